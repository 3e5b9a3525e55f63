#!/usr/bin/env bash
# rtune against PyTorch eager on the same CPU cores, interleaved per workload: inference, frozen backbone
# and all-layer training steps of ResNet-18/50 at 224 px (issue 19's table). Prints one line per run:
#   bench/compare_cpu_steps.sh [archs] [batch] [steps]     e.g. bench/compare_cpu_steps.sh "resnet18 resnet50" 32 3
# rtune runs fp32 and, where this CPU has AVX512_BF16/AMX, bf16 (convolution products); PyTorch runs fp32
# NCHW, fp32 channels_last and, on those CPUs, bf16 autocast (channels_last). Same threads for both (OMP_NUM_THREADS, default
# every core). Needs `pip install torch torchvision` (CPU) and a built rtune (RTUNE=path, default build/rtune).
# The frozen backbone runs in rtune twice: with BatchNorm in train mode (`--frozen-bn train`, the same
# computation as PyTorch's script under model.train()) and with rtune's default `--frozen-bn eval` (the
# backbone folded and fused, without gradient); PyTorch runs the script.
set -euo pipefail
cd "$(dirname "$0")/.."
RTUNE=${RTUNE:-build/rtune}
ARCHS=${1:-"resnet18 resnet50"}
BATCH=${2:-32}
STEPS=${3:-3}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, threads $OMP_NUM_THREADS;" \
     "avx512: $(grep -o 'avx512[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
bf16=fp32
if "$RTUNE" bench infer --arch resnet18 --width 4 --batch 1 --input 32 --steps 1 --warmup 0 --device cpu \
     --precision bf16 >/dev/null 2>&1; then bf16="fp32 bf16"; fi
for arch in $ARCHS; do
  for mode in infer backbone none; do
    variants=("")
    [ "$mode" = backbone ] && variants=("--frozen-bn train" "--frozen-bn eval")
    for p in $bf16; do
      for v in "${variants[@]}"; do
        if [ "$mode" = infer ]; then args=(bench infer); else args=(bench train --freeze "$mode" $v); fi
        r=$("$RTUNE" "${args[@]}" --arch "$arch" --batch "$BATCH" --input 224 --warmup 1 --steps "$STEPS" \
              --device cpu --precision "$p" 2>&1 | tail -1)
        echo "$arch $mode${v:+ $v} rtune $p: $r"
      done
    done
    # PyTorch's bf16 autocast only where rtune has bf16 too: without AVX512_BF16/AMX it is emulated.
    pytorch_variants=("fp32" "fp32 --channels-last")
    [ "$bf16" = "fp32 bf16" ] && pytorch_variants+=("bf16")
    for v in "${pytorch_variants[@]}"; do
      read -r prec cl <<<"$v"
      if [ "$mode" = infer ]; then extra=(--infer); else extra=(--freeze "$mode"); fi
      r=$(python3 bench/pytorch_train.py --device cpu --arch "$arch" --batch "$BATCH" --size 224 --precision "$prec" \
            ${cl:+$cl} "${extra[@]}" --warmup 1 --steps "$STEPS" 2>&1 | tail -1)
      echo "$arch $mode pytorch $v: $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["img_per_s"], "img/s")' "$r" 2>/dev/null || echo "$r")"
    done
  done
done
