#!/usr/bin/env bash
# Data-parallel scaling on CPU ranks (issue 20): img/s of 1 rank vs N ranks, one thread each, the same
# per-rank batch, on a generated image folder; and the share of each epoch the gradient all-reduce took
# (the "all-reduce:" line rank 0 logs). usage: bench/mpi_scaling.sh [ranks] [images] [size] [batch]
# Needs mpirun (Open MPI) and a build with MPI (build/rtune, or RTUNE=path).
set -euo pipefail
cd "$(dirname "$0")/.."
ranks=${1:-2} images=${2:-512} size=${3:-64} batch=${4:-16}
rtune=${RTUNE:-build/rtune}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp/data" "$images" "$size" <<'PY'
import os, sys
import numpy as np
from PIL import Image
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
for i in range(n):
    c = i % 4
    d = os.path.join(root, f"class{c}")
    os.makedirs(d, exist_ok=True)
    a = (rng.random((size, size, 3)) * 128 + c * 32).astype("uint8")
    Image.fromarray(a).save(os.path.join(d, f"{i}.png"))
PY
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(grep -o 'avx512[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
for freeze in none backbone; do
  common=(train --data "$tmp/data" --val-split 0 --arch resnet18 --pretrained none --epochs 2 --batch "$batch"
          --transforms "center_crop=$size" --freeze "$freeze" --feature-cache 0 --threads 1 --no-progress --device cpu)
  OMP_NUM_THREADS=1 "$rtune" "${common[@]}" --out "$tmp/one-$freeze" > "$tmp/one.log"
  OMP_NUM_THREADS=1 mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$ranks" "$rtune" "${common[@]}" \
    --out "$tmp/n-$freeze" > "$tmp/n.log"
  # epoch 2: the loader and caches are warm
  one=$(grep '^epoch 2/' "$tmp/one.log" | sed 's/.* \([0-9.]*\) img\/s.*/\1/')
  many=$(grep '^epoch 2/' "$tmp/n.log" | sed 's/.* \([0-9.]*\) img\/s.*/\1/')
  comm=$(grep -A1 '^epoch 2/' "$tmp/n.log" | grep 'all-reduce' | sed 's/^ *//')
  echo "freeze $freeze, resnet18 ${size}px, batch $batch per rank, 1 thread per rank: 1 rank $one img/s; $ranks ranks $many img/s" \
       "(x$(python3 -c "print(round($many/$one, 2))")); $ranks ranks: $comm"
done
