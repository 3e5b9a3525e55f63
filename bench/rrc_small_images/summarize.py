"""Tables of the paired runs (batch1..4.jsonl in the current folder): mean best val top-1 and per-seed differences."""
import json, numpy as np
def load(f):
    try: return [json.loads(l) for l in open(f)]
    except FileNotFoundError: return []
def table(title, rows, a, b, key="best"):
    seeds = sorted({r["seed"] for r in rows if a(r)} & {r["seed"] for r in rows if b(r)})
    if not seeds: return
    A = np.array([100 * next(r[key] for r in rows if a(r) and r["seed"] == s) for s in seeds])
    B = np.array([100 * next(r[key] for r in rows if b(r) and r["seed"] == s) for s in seeds])
    d = A - B
    print(f"{title:62s} {A.mean():6.2f} vs {B.mean():6.2f}  diff per seed {' '.join(f'{x:+.1f}' for x in d)}  mean {d.mean():+.2f} ({(d > 0).sum()}/{len(d)} > 0)")
b1 = load("batch1.jsonl"); b2 = load("batch2.jsonl"); b3 = load("batch3.jsonl"); b4 = load("batch4.jsonl")
f = lambda tool, crop, bn, freeze="backbone": (lambda r: r["tool"] == tool and r["crop"] == crop and r["bn"] == bn and r.get("freeze", "backbone") == freeze)
print("noisy digits, frozen backbone (batch1):")
for crop in ("rrc", "none"):
    table(f"  {crop}: rtune vs torch, both BN eval (frozen)", b1, f("rtune", crop, "eval"), f("torch", crop, "eval"))
    table(f"  {crop}: rtune vs torch, both BN train (model.train())", b1, f("rtune", crop, "train"), f("torch", crop, "train"))
    table(f"  {crop}: rtune default (BN eval) vs torch tutorial (BN train)", b1, f("rtune", crop, "eval"), f("torch", crop, "train"))
print("noisy digits, whole network trained (batch3):")
for crop in ("rrc", "none"):
    table(f"  {crop}: rtune vs torch", b3, f("rtune", crop, "train", "none"), f("torch", crop, "train", "none"))
print("clean (MNIST-like) digits, frozen backbone (rtune: batch4, torch: batch2 val A):")
for crop in ("rrc", "none"):
    t = [dict(r, best=r["bestA"]) for r in b2 if r["data"] == "clean"]
    table(f"  {crop}: rtune default (BN eval) vs torch tutorial (BN train)", b4 + t, f("rtune", crop, "eval"), f("torch", crop, "train"))
    table(f"  {crop}: torch BN eval vs torch BN train", t, f("torch", crop, "eval"), f("torch", crop, "train"))
print("validation pipeline, torch (batch2): B = Resize(36)+CenterCrop(32) (rtune's default) vs A = as is")
for data in ("digits", "clean"):
    for crop in ("rrc", "none"):
        t = [r for r in b2 if r["data"] == data and r["crop"] == crop]
        table(f"  {data} {crop}: B vs A (both BN modes)", [dict(r, seed=(r['seed'], r['bn'])) for r in t], lambda r: True, lambda r: True, "bestB") if False else None
        if t:
            d = np.array([100 * (r["bestB"] - r["bestA"]) for r in t])
            print(f"  {data:6s} {crop:4s}: best(B) - best(A) over {len(d)} runs: mean {d.mean():+.2f}, range {d.min():+.1f}..{d.max():+.1f}")
