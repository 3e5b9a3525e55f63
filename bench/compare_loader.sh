#!/usr/bin/env bash
# The data pipeline side by side: rtune's loader (bench_loader) and torchvision + DataLoader
# (bench/pytorch_loader.py) on the same JPEG folder, same transforms, batch and worker count, runs
# interleaved so that both see the same machine state. Prints each run's figures, then the medians.
# usage: bench/compare_loader.sh [images=2000] [runs=3]   (needs ./build/bench_loader, python3 + torch)
# env: WORKERS=16 BENCH=./build-gpu/bench_loader on a bigger machine; DATA=dir to use an existing folder.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}; runs=${2:-3}
workers=${WORKERS:-2}; bench=${BENCH:-./build/bench_loader}; batch=${BATCH:-128}
data=${DATA:-/tmp/rtune_jpeg$n}
[ -d "$data" ] || python3 bench/make_jpeg_folder.py "$data" --images "$n" --seed 0 --jobs "$workers"
out=$(mktemp -d)
for r in $(seq "$runs"); do
  "$bench" --data "$data" --threads "$workers" --batch "$batch" --cache | tee -a "$out/rtune_train.txt" | head -n -1
  python3 bench/pytorch_loader.py --data "$data" --workers "$workers" --batch "$batch" | tee -a "$out/torch_train.txt" | head -n -1
  "$bench" --data "$data" --threads "$workers" --batch "$batch" --cache --transforms imagenet-eval | tee -a "$out/rtune_eval.txt" | head -n -1
  python3 bench/pytorch_loader.py --data "$data" --workers "$workers" --batch "$batch" --passes eval,eval_uint8 | tee -a "$out/torch_eval.txt" | head -n -1
  "$bench" --data "$data" --threads "$workers" --batch "$batch" --transforms random_resized_crop=224,hflip,jitter=0.4:0.4:0.4:0.1 | tee -a "$out/rtune_jitter.txt" | head -n -1
  python3 bench/pytorch_loader.py --data "$data" --workers "$workers" --batch "$batch" --passes jitter,jitter_uint8 | tee -a "$out/torch_jitter.txt" | head -n -1
done
python3 - "$out" <<'PY'
import json, statistics, sys, pathlib
d = pathlib.Path(sys.argv[1])
def rows(name):
    return [json.loads(l) for l in (d / name).read_text().splitlines() if l.startswith("{")]
def med(rs, k):
    return statistics.median(r[k] for r in rs)
rt, tt, re, te = rows("rtune_train.txt"), rows("torch_train.txt"), rows("rtune_eval.txt"), rows("torch_eval.txt")
rj, tj = rows("rtune_jitter.txt"), rows("torch_jitter.txt")
print(f"medians over {len(rt)} runs, img/s (wall):")
print(f"  decode only            rtune {med(rt,'decode_img_s'):8.0f}   PyTorch {med(tt,'decode_img_s'):8.0f}")
print(f"  imagenet-train         rtune {med(rt,'train_img_s'):8.0f}   PyTorch uint8 {med(tt,'train_uint8_img_s'):8.0f}   float {med(tt,'train_img_s'):8.0f}")
print(f"  imagenet-train cached  rtune {med(rt,'cached_img_s'):8.0f}")
print(f"  imagenet-eval          rtune {med(re,'train_img_s'):8.0f}   PyTorch uint8 {med(te,'eval_uint8_img_s'):8.0f}   float {med(te,'eval_img_s'):8.0f}")
print(f"  imagenet-eval cached   rtune {med(re,'cached_img_s'):8.0f}")
print(f"  train + ColorJitter    rtune {med(rj,'train_img_s'):8.0f}   PyTorch uint8 {med(tj,'jitter_uint8_img_s'):8.0f}   float {med(tj,'jitter_img_s'):8.0f}")
print("per CPU-second (img per CPU-s):")
print(f"  imagenet-train         rtune {med(rt,'train_img_cpu_s'):8.0f}   PyTorch uint8 {med(tt,'train_uint8_img_cpu_s'):8.0f}   float {med(tt,'train_img_cpu_s'):8.0f}")
print(f"  imagenet-eval          rtune {med(re,'train_img_cpu_s'):8.0f}   PyTorch uint8 {med(te,'eval_uint8_img_cpu_s'):8.0f}   float {med(te,'eval_img_cpu_s'):8.0f}")
print(f"  train + ColorJitter    rtune {med(rj,'train_img_cpu_s'):8.0f}   PyTorch uint8 {med(tj,'jitter_uint8_img_cpu_s'):8.0f}   float {med(tj,'jitter_img_cpu_s'):8.0f}")
print(f"  outputs kept in {d}")
PY
