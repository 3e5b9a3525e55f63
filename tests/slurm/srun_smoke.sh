#!/usr/bin/env bash
# e2e_srun: data-parallel training launched by Slurm (issue 20), on whatever Slurm cluster this machine
# belongs to (a single-node one is enough: slurmctld, slurmd and munged running). `srun --mpi=pmix -n 2`
# (Open MPI's way under Slurm) gives 2 MPI ranks and one run; a plain `srun -n 2` (no MPI plugin) is
# refused on every task instead of training twice. Skips (77) where `sinfo` does not answer: CI has no
# Slurm. usage: srun_smoke.sh RTUNE_BINARY
set -euo pipefail
rtune=$1
if ! command -v srun > /dev/null || ! timeout 10 sinfo > /dev/null 2>&1; then
  echo "no Slurm cluster answers here (srun/sinfo): srun launch not checked" >&2
  exit 77
fi
if ! srun --mpi=list 2>&1 | grep -q pmix; then
  echo "this Slurm has no pmix plugin: srun launch not checked" >&2
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp/data" <<'PY'
import os, sys
from PIL import Image
for split in ("train", "val"):
    for c in range(2):
        d = os.path.join(sys.argv[1], split, f"c{c}")
        os.makedirs(d)
        for i in range(4):
            Image.new("RGB", (16, 16), (100 * c, 40 * i, 90)).save(os.path.join(d, f"{i}.png"))
PY
args=(train --data "$tmp/data" --arch resnet18 --pretrained none --width 4 --batch 4 --epochs 1 --threads 1
      --no-progress --device cpu --feature-cache 0)
fail() { echo "e2e_srun: $1" >&2; cat "$2" >&2; exit 1; }

timeout 300 srun --mpi=pmix -n 2 "$rtune" "${args[@]}" --out "$tmp/pmix" > "$tmp/pmix.log" 2>&1 ||
  fail "srun --mpi=pmix -n 2 failed" "$tmp/pmix.log"
grep -q "ranks: MPI (.*), 2 ranks" "$tmp/pmix.log" || fail "no 2-rank MPI run under srun --mpi=pmix" "$tmp/pmix.log"
[ "$(grep -c 'done in' "$tmp/pmix.log")" = 1 ] || fail "not exactly one run (rank 0 alone prints)" "$tmp/pmix.log"

if timeout 120 srun -n 2 "$rtune" "${args[@]}" --out "$tmp/plain" > "$tmp/plain.log" 2>&1; then
  fail "a plain srun -n 2 (no MPI plugin) was not refused" "$tmp/plain.log"
fi
[ "$(grep -c 'srun started 2 tasks without an MPI plugin' "$tmp/plain.log")" = 2 ] ||
  fail "plain srun: not refused on both tasks, naming the fix" "$tmp/plain.log"
echo "e2e_srun: srun --mpi=pmix -n 2 trained as 2 MPI ranks; plain srun -n 2 refused on both tasks"
