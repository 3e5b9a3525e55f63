#!/usr/bin/env bash
# One training epoch of the same workflow in rtune and in PyTorch (default: the CPU): the same JPEG
# folder, RandomResizedCrop + flip + normalize, ResNet-18 from scratch, SGD (default batch 16, 2 threads).
# usage: bench/compare_cpu_epoch.sh [images=512] [size=112]   (needs ./build/rtune, python3 + torch)
# env: DEVICE=cuda RTUNE=./build-gpu/rtune WORKERS=16 BATCH=256 [PRECISION=bf16] for the same comparison on a
# GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-512}; size=${2:-112}
device=${DEVICE:-cpu}; rtune=${RTUNE:-./build/rtune}; workers=${WORKERS:-2}; batch=${BATCH:-16}
precision=${PRECISION:-fp32}  # bf16: rtune --precision bf16, PyTorch bf16 autocast + channels-last (a GPU, or a CPU with AVX512_BF16/AMX)
data=/tmp/rtune-epoch-bench-$n
[ -d "$data" ] || python3 bench/make_jpeg_folder.py "$data" --images "$n" --classes 4 --seed 0 --jobs "$workers"
for freeze in none backbone; do
  rm -rf /tmp/rtune-epoch-run
  start=$(date +%s.%N)
  "$rtune" train --data "$data" --pretrained none --arch resnet18 --epochs 1 --batch "$batch" --opt sgd --lr 0.01 \
      --freeze "$freeze" --image-size "$size" --threads "$workers" --device "$device" --precision "$precision" --no-progress --out /tmp/rtune-epoch-run \
      > /tmp/rtune-epoch-run.log
  end=$(date +%s.%N)
  echo "rtune freeze=$freeze: $(grep -o 'epoch 1/1:.*' /tmp/rtune-epoch-run.log) | command wall $(echo "$end - $start" | bc) s"
  python3 bench/pytorch_epoch_cpu.py --data "$data" --size "$size" --batch "$batch" --workers "$workers" \
      --freeze "$freeze" --device "$device" --precision "$precision"
done
