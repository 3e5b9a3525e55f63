#!/usr/bin/env bash
# One command on a machine with an NVIDIA GPU: configure the real CUDA build, build, run every test
# suite (the CUDA parity and model tests run on the hardware there), then the training benchmarks of
# rtune (when its `bench train` subcommand exists) and PyTorch (when torch is installed), the data loader
# against torchvision's DataLoader on all cores, writing all
# logs to one folder.   usage: bench/gpu.sh [log-dir]   (default: bench-logs/<date>-<host>)
set -uo pipefail
cd "$(dirname "$0")/.."
logs=${1:-bench-logs/$(date +%Y%m%d-%H%M%S)-$(hostname)}
mkdir -p "$logs"
echo "logs: $logs"
{ nvidia-smi; nvcc --version; } > "$logs/machine.txt" 2>&1

cmake -S . -B build-gpu -G Ninja -DRTUNE_CUDA=ON -DRTUNE_CUDA_SIM=OFF > "$logs/configure.log" 2>&1 || { echo "configure failed"; exit 1; }
cmake --build build-gpu -j"$(nproc)" > "$logs/build.log" 2>&1 || { echo "build failed: $logs/build.log"; exit 1; }
ctest --test-dir build-gpu --output-on-failure -j1 > "$logs/ctest.log" 2>&1
echo "ctest: $(tail -n 3 "$logs/ctest.log" | head -n 1)"

for arch in resnet50 resnet18; do
  for freeze in none backbone; do
    for prec in fp32 bf16; do
      tag="$arch-$freeze-$prec"
      if ./build-gpu/rtune bench train --help > /dev/null 2>&1; then
        f=""; [ "$freeze" = backbone ] && f="--freeze backbone"
        ./build-gpu/rtune bench train --device cuda --arch "$arch" --batch 256 --precision "$prec" $f > "$logs/rtune-$tag.log" 2>&1
      fi
      if python3 -c "import torch, torchvision; assert torch.cuda.is_available()" 2> /dev/null; then
        python3 bench/pytorch_train.py --arch "$arch" --batch 256 --precision "$prec" --freeze "$freeze" \
          > "$logs/pytorch-eager-$tag.log" 2>&1
        [ "$prec" = bf16 ] && python3 bench/pytorch_train.py --arch "$arch" --batch 256 --precision bf16 \
          --freeze "$freeze" --compile > "$logs/pytorch-compile-$tag.log" 2>&1
      fi
    done
  done
done
# The whole workflow (decode, augment, train) for one epoch on a JPEG folder, rtune vs PyTorch, on the GPU.
if python3 -c "import torch, torchvision, PIL, numpy; assert torch.cuda.is_available()" 2> /dev/null; then
  for prec in fp32 bf16; do
    DEVICE=cuda RTUNE=./build-gpu/rtune WORKERS="$(nproc)" BATCH=256 PRECISION=$prec bash bench/compare_cpu_epoch.sh \
      10000 224 > "$logs/epoch-compare-$prec.log" 2>&1
  done
fi
# The data pipeline alone, side by side with torchvision + DataLoader on every core (3 interleaved rounds
# on 10,000 synthetic 500x375 JPEGs): the loader figures bench/RESULTS.md has only for 2 cores so far.
if python3 -c "import torch, torchvision, PIL, numpy" 2> /dev/null; then
  WORKERS="$(nproc)" BENCH=./build-gpu/bench_loader bash bench/compare_loader.sh 10000 3 > "$logs/loader-compare.log" 2>&1
fi
# The figures, one line per run, for bench/RESULTS.md.
grep -H -E "img/s|img_per_s|device memory" "$logs"/*.log
echo "done: $logs"
