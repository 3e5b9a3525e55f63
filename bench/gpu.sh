#!/usr/bin/env bash
# The GPU check in one prepared command, at most 8 minutes on the lent GPU machine (issue 19): nothing is
# configured or built there. It unpacks the bundle that bench/gpu_bundle.sh built on the development
# machine (gpu-bundle/rtune-gpu.tar.xz: rtune, the CUDA test binaries, their non-NVIDIA libraries, Open
# MPI's runtime; cuDNN, cuBLAS and NCCL come from the machine's PyTorch), runs
# the CUDA test binaries, then short side-by-side benchmarks, rtune vs PyTorch eager with the same
# settings: training (bench train / pytorch_train.py; ResNet-50 and -18, fp32 and bf16, all layers and
# frozen backbone, batch 256) and inference (bench infer / pytorch_train.py --infer); then, where
# `nvidia-smi -L` lists 2 GPUs or more, data-parallel scaling: the ResNet-50 bf16 all-layers training
# benchmark under the bundle's mpirun on 1, 2, 4 and 8 ranks (as many as there are GPUs, one per rank,
# NCCL all-reduce), img/s of all ranks and the efficiency img/s(N) / (N x img/s(1)) in the summary. To
# make room, a machine of several GPUs skips the ResNet-18 training pairs; with one GPU the scaling step
# only records that it cannot be measured. Every step runs under `timeout` with its own budget, so an
# overrun costs that step alone; the budgets total under 480 s with 1 GPU and with 8.
#
#   bash bench/gpu.sh --dry-run [GPUS]   list every step with its budget and the total for GPUS GPUs
#                                        (default: for 1, then for 8); runs nothing, fails if a
#                                        total is over 480 s
#   bash bench/gpu.sh OUT_DIR            run; OUT_DIR gets summary.txt (every figure, test result and step
#                                        time) and logs.tar.gz (every log): two files, as the device tool
#                                        brings back at most 8 from $OUT
#
# On the development machine, in the checkout the session was started in (the device tool sends that
# checkout, also when called from a worktree):
#   bash bench/gpu_bundle.sh      # build + pack + check; prints the bundle's size (tracked files + bundle <= 64 MiB)
# then ONE call of the device tool:
#   run(command="bash bench/gpu.sh $OUT", carry=["gpu-bundle"], timeout_s=540)
# (540 s: the 480 s of budgets plus unpacking and margin; with the machine's start that leaves room in a
# 15-minute lease but not for a second try, so run --dry-run and gpu_bundle.sh's check here first.)
# Longer comparisons the old script ran (the 10,000-image epoch, the loader rounds, torch.compile) do not fit
# in 8 minutes: bench/compare_cpu_epoch.sh and bench/compare_loader.sh run them in a lease of their own.
# STEPS/WARMUP (train, scaling included) and INFER_STEPS override the step counts; the budgets stay.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
repo=$PWD
bundle_file=gpu-bundle/rtune-gpu.tar.xz
warmup=${WARMUP:-3} steps=${STEPS:-20} infer_steps=${INFER_STEPS:-30}
limit=480

dry=0 out="" dry_gpus=""
case "${1:-}" in
  --dry-run) dry=1 dry_gpus=${2:-1 8} ;;
  "" | -h | --help) sed -n '2,32p' "$0"; exit 2 ;;
  *) out=$1 ;;
esac

total=0
# step BUDGET_S NAME COMMAND: in --dry-run, lists it; else runs COMMAND under `timeout BUDGET_S`, its
# output in $logs/NAME.log, and records the time it took and its exit status (124: over its budget).
step() {
  local budget=$1 name=$2 cmd=$3
  total=$((total + budget))
  if [ "$dry" = 1 ]; then
    printf '%4ss  %-32s %s\n' "$budget" "$name" "$cmd"
    return
  fi
  local t0=$SECONDS rc=0
  timeout -k 5 "$budget" bash -c "$cmd" > "$logs/$name.log" 2>&1 || rc=$?
  local note=""
  [ "$rc" = 124 ] && note=" OVER BUDGET (stopped)"
  printf '%-32s budget %4ss  used %4ss  rc %s%s\n' "$name" "$budget" "$((SECONDS - t0))" "$rc" "$note" | tee -a "$logs/steps.txt"
}

# The CUDA test binaries of the bundle's tests.txt, 4 at a time (16 cores: 4 OpenMP threads each), each
# under its own timeout; fixtures come from this checkout (RTUNE_SOURCE_DIR). One line per binary.
run_tests() {
  export OMP_NUM_THREADS=4 OMP_WAIT_POLICY=passive RTUNE_SOURCE_DIR=$repo
  xargs -P 4 -I{} bash -c 't0=$SECONDS; timeout -k 5 '"$1"' "$B/run" {} > "$logs/{}.log" 2>&1; rc=$?
    case $rc in 0) r=passed ;; 77) r=skipped ;; 124) r="TIMEOUT" ;; *) r="FAILED" ;; esac
    echo "{}: $r (rc $rc, $((SECONDS - t0)) s) $(grep -h "test cases:" "$logs/{}.log" | tail -n 1)"' < "$B/tests.txt"
}
export -f run_tests

plan() {
  step 15 machine 'nvidia-smi; nproc; ldd --version | head -n 1; ldconfig -p | grep -E "libcuda\.so|libcudnn\.so"; echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"; python3 -c "import torch, torchvision; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"cudnn\", torch.backends.cudnn.version(), torch.cuda.get_device_name())"'
  # (Python's tarfile where tar has no xz.)
  step 15 unpack "mkdir -p \"\$B\" && { tar -C \"\$B\" -xJf $bundle_file || python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' $bundle_file \"\$B\"; } && cat \"\$B/BUILD-INFO\" && \"\$B/run\" --libpath && \"\$B/run\" --ldd rtune && ! \"\$B/run\" --ldd rtune | grep 'not found'"
  step 75 tests "run_tests 65"
  local arch prec freeze
  local train_archs=(resnet50 resnet18)
  [ "$ngpu" -ge 2 ] && train_archs=(resnet50)  # room for the scaling steps
  for arch in "${train_archs[@]}"; do
    local b=12
    [ "$arch" = resnet50 ] && b=20
    for prec in fp32 bf16; do
      for freeze in none backbone; do
        # --freeze backbone: rtune's default --frozen-bn eval (folded, no-grad backbone), PyTorch's script
        # (model.train(): batch statistics in the frozen BatchNorms).
        local common="--arch $arch --batch 256 --precision $prec --freeze $freeze --warmup $warmup --steps $steps"
        step "$b" "rtune-train-$arch-$prec-$freeze" "\"\$B/run\" rtune bench train --device cuda $common"
        step "$b" "pytorch-train-$arch-$prec-$freeze" "python3 bench/pytorch_train.py $common"
      done
    done
  done
  for arch in resnet50 resnet18; do
    for prec in fp32 bf16; do
      local common="--arch $arch --batch 256 --precision $prec --warmup $warmup --steps $infer_steps"
      step 12 "rtune-infer-$arch-$prec" "\"\$B/run\" rtune bench infer --device cuda $common"
      step 12 "pytorch-infer-$arch-$prec" "python3 bench/pytorch_train.py --infer $common"
    done
  done
  # Data-parallel scaling, one GPU per rank: rtune bench train under mpirun trains on every rank's GPU
  # with NCCL-averaged gradients and rank 0 prints the img/s of all ranks (--tag-output marks its lines).
  # Not bound to cores: each rank's loader and kernels take their share of the machine.
  if [ "$ngpu" -lt 2 ]; then
    step 2 scaling "echo '$ngpu GPU: scaling not measurable'"
    return
  fi
  local n
  for n in 1 2 4 8; do
    [ "$n" -le "$ngpu" ] || break
    step 28 "scaling-${n}gpu" "\"\$B/run\" mpirun --allow-run-as-root --oversubscribe --bind-to none --tag-output -np $n \"\$B/bin/rtune\" bench train --device cuda --arch resnet50 --batch 256 --precision bf16 --freeze none --warmup $warmup --steps $steps"
  done
}

if [ "$dry" = 1 ]; then
  over=0
  for ngpu in $dry_gpus; do
    total=0
    echo "== with $ngpu GPU(s)"
    plan
    echo "total: ${total} s of budgets ($((total / 60)) min $((total % 60)) s; the limit is $limit s)"
    [ "$total" -le "$limit" ] || over=1
  done
  exit "$over"
fi

[ -f "$bundle_file" ] || { echo "no $bundle_file: build it with bash bench/gpu_bundle.sh and carry gpu-bundle"; exit 1; }
ngpu=$(nvidia-smi -L 2> /dev/null | grep -c '^GPU ')
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
export B=$work/bundle logs=$work/logs
mkdir -p "$logs"
# img/s per rank count from rank 0's "timed steps" line, and the efficiency against 1 rank.
scaling_summary() {
  local n ips base=""
  for n in 1 2 4 8; do
    [ -f "$logs/scaling-${n}gpu.log" ] || continue
    ips=$(grep -E '^\[[0-9]+,0\]<stdout>:.*timed steps' "$logs/scaling-${n}gpu.log" | grep -oE '[0-9.]+ img/s' | head -n 1)
    ips=${ips% img/s}
    if [ -z "$ips" ]; then
      echo "$n GPU(s): no img/s line (logs/scaling-${n}gpu.log)"
    elif [ "$n" = 1 ]; then
      base=$ips
      echo "1 GPU: $ips img/s"
    elif [ -n "$base" ]; then
      awk -v n="$n" -v x="$ips" -v b="$base" 'BEGIN {printf "%d GPUs: %s img/s, efficiency %.1f%% (%.2fx of 1 GPU)\n", n, x, 100 * x / (n * b), x / b}'
    else
      echo "$n GPUs: $ips img/s (no 1-GPU figure: efficiency unknown)"
    fi
  done
}

# summary.txt and logs.tar.gz are written however the run ends (also when stopped by a signal).
finish() {
  {
    echo "== steps (budget, time used, exit status; 124 = stopped at its budget)"
    cat "$logs/steps.txt" 2> /dev/null
    echo "== tests"
    cat "$logs/tests.log" 2> /dev/null
    echo "== figures"
    grep -H -E "img/s|img_per_s|device memory" "$logs"/rtune-*.log "$logs"/pytorch-*.log 2> /dev/null | sed "s|^$logs/||"
    echo "== scaling (ResNet-50 bf16, all layers, batch 256 per GPU; efficiency = img/s at N / (N x img/s at 1))"
    cat "$logs/scaling.log" 2> /dev/null
    scaling_summary
    echo "== machine"
    cat "$logs/machine.log" 2> /dev/null
  } > "$out/summary.txt"
  tar -C "$work" -czf "$out/logs.tar.gz" logs
  echo "written: $out/summary.txt $out/logs.tar.gz"
}
trap finish EXIT
trap 'exit 143' TERM INT
plan
echo "total: used $SECONDS s of ${total} s of budgets"
