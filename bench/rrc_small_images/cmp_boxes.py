"""Crop-box distribution: rtune (./boxes) vs torchvision RandomResizedCrop.get_params, N per size."""
import subprocess, sys, numpy as np, torch, torchvision, torchvision.transforms as T
N = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
print("torch", torch.__version__, "torchvision", torchvision.__version__, "N", N)
for H, W in ((28, 28), (32, 32), (224, 224)):
    r = np.loadtxt(subprocess.run(["./boxes", str(H), str(W), str(N)], capture_output=True, text=True).stdout.splitlines(), dtype=np.int64)
    torch.manual_seed(0); img = torch.zeros(1, H, W)
    t = []
    for _ in range(N):
        i, j, h, w = T.RandomResizedCrop.get_params(img, [0.08, 1.0], [3 / 4, 4 / 3])
        t.append((i, j, h, w, int(torch.rand(1) < 0.5)))
    t = np.array(t)
    for name, a in (("rtune", r), ("torchvision", t)):
        h, w = a[:, 2], a[:, 3]; area = h * w / (H * W)
        full = np.mean((h == H) & (w == W))
        cy = a[:, 0] + h / 2 - H / 2; cx = a[:, 1] + w / 2 - W / 2
        print(f"{H}x{W} {name:12s} area mean {area.mean():.4f} p10/50/90 {np.percentile(area,10):.3f}/{np.percentile(area,50):.3f}/{np.percentile(area,90):.3f}"
              f"  h mean {h.mean():.3f} w mean {w.mean():.3f}  whole-image {full:.4f}  centre offset y {cy.mean():+.3f} x {cx.mean():+.3f}"
              f"  upscale factor mean {np.mean(H / h):.3f}  flip {a[:,4].mean():.4f}")
    # chi-square over the joint (h, w) histogram
    keys = {}
    for a, col in ((r, 0), (t, 1)):
        for hw in map(tuple, a[:, 2:4]):
            keys.setdefault(hw, [0, 0])[col] += 1
    obs = np.array(list(keys.values()), float); obs = obs[obs.sum(1) >= 10]
    tot = obs.sum(0); exp = obs.sum(1, keepdims=True) * tot / tot.sum()
    chi2 = ((obs - exp) ** 2 / exp).sum(); dof = len(obs) - 1
    print(f"{H}x{W} (h,w) joint histogram: {len(obs)} cells, chi2 {chi2:.1f} on {dof} dof (z = {(chi2-dof)/np.sqrt(2*dof):+.2f})")
