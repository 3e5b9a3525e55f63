#!/usr/bin/env bash
# Builds HERE, where nvcc, cuDNN, cuBLAS, NCCL and Open MPI are installed but no GPU is needed, the
# real-CUDA binaries that bench/gpu.sh runs on a lent GPU machine, and packs them with every shared
# library that machine may lack into one file, gpu-bundle/rtune-gpu.tar.xz (git-ignored; the device
# tool's `carry` takes it).
#
#   bash bench/gpu_bundle.sh           configure build-bundle/, build, pack, then --check
#   bash bench/gpu_bundle.sh --check   prove the packed bundle: unpack it, list every binary's and plugin's
#                                      shared libraries and bind their symbols with the system's library
#                                      folder hidden, then run 2 CPU ranks under the bundle's mpirun
#
# What the bundle holds: bin/ (rtune, the CUDA test binaries, Open MPI's mpirun and orted, stripped), lib/
# (every shared library they and the plugins load except glibc, libstdc++ and libgcc_s, which any x86-64
# Linux has, and the NVIDIA set: libcuda, cudart, cuBLAS, cuDNN, NCCL, taken at run time from the GPU
# machine's CUDA toolkit or the pip nvidia-* packages beside its PyTorch), mpi/ (Open MPI's and PMIx's
# plugins, help texts and settings), `run` (bench/gpu_launch.sh: sets LD_LIBRARY_PATH to lib/ plus those
# NVIDIA folders, and points Open MPI at mpi/), tests.txt (the test binaries bench/gpu.sh runs) and
# BUILD-INFO. libstdc++ stays out on purpose: the GPU machine's is newer, and an older one first on
# LD_LIBRARY_PATH would break its cuDNN.
# The code is built for x86-64-v3 (AVX2, FMA), not -march=native: the GPU machine's CPU is not this one.
# cudart stays a shared library (the targets link CUDA::cudart); the GPU machine's PyTorch brings
# libcudart.so.13, libcublas.so.13, libcudnn.so.9 and libnccl.so.2, the sonames this CUDA 13 build asks for.
set -euo pipefail
cd "$(dirname "$0")/.."
out=gpu-bundle/rtune-gpu.tar.xz
limit_mib=64  # the device tool carries at most 64 MiB: tracked files + the bundle

# The CUDA test binaries (ctest is not carried): per-op CPU-vs-CUDA parity, the optimizer rules' kernels,
# whole tiny models (fp32, bf16), several optimizers at once, the trajectory and the feature cache on the
# device, and the simulator's kernels compiled for sm_90.
gpu_tests=(ops_conv2d ops_batch_norm ops_pool ops_linear ops_softmax ops_elementwise ops_images ops_views
           ops_residual_block ops_optim ops_device_memory optim_rules_cuda cuda_sim_gpu_parity cuda_models
           cuda_bf16 cuda_optim_multi cuda_trajectory cuda_feature_cache)
system_re='^(linux-vdso|ld-linux-x86-64|libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s)\.so'
cuda_re='^lib(cuda|cudart|cublas|cublasLt|cudnn[a-z_]*|nvrtc|nvJitLink|nccl)\.so'
# Debian's Open MPI 4.1 (openmpi-bin, libopenmpi3) and the PMIx 4 it is built on (libpmix2).
ompi_plugins=/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3 ompi_share=/usr/share/openmpi ompi_etc=/etc/openmpi
pmix_plugins=/usr/lib/x86_64-linux-gnu/pmix2/lib/pmix pmix_share=/usr/lib/x86_64-linux-gnu/pmix2/share/pmix
# Plugins left out: OpenSHMEM's, the network fabrics' (InfiniBand verbs, libfabric, UCX, PSM) and the
# monitoring and netlink ones. One machine's ranks talk through shared memory (btl vader), and these
# would bring libraries the GPU machine lacks (libfabric, libucx, libibverbs, liboshmem, libnl).
plugins_left_out='^mca_(atomic|memheap|scoll|spml|sshmem)_|_(ofi|openib|ucx|psm|psm2|monitoring|netlink)\.so$'

build() {
  export PATH=/usr/local/cuda/bin:$PATH
  local launcher=()
  command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache
                                            -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
  # .ci/run's real-CUDA configuration (sm_90-real + PTX from CMakeLists.txt), portable CPU code, with MPI
  # for data-parallel runs over the machine's GPUs (mpirun -np N: Open MPI launches, NCCL all-reduces).
  cmake -S . -B build-bundle -G Ninja -DCMAKE_BUILD_TYPE=Release -DRTUNE_CUDA=ON -DRTUNE_CUDA_SIM=OFF -DRTUNE_MPI=ON \
    -DRTUNE_NATIVE=OFF -DCMAKE_CXX_FLAGS=-march=x86-64-v3 -DCMAKE_C_FLAGS=-march=x86-64-v3 "${launcher[@]}" > /dev/null
  cmake --build build-bundle -j"${JOBS:-2}" --target rtune "${gpu_tests[@]/#/test_}"
}

pack() {
  local stage
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' RETURN
  mkdir -p "$stage/bin" "$stage/lib" gpu-bundle
  for b in rtune "${gpu_tests[@]/#/test_}"; do
    strip --strip-unneeded -o "$stage/bin/$b" "build-bundle/$b"
  done
  printf '%s\n' "${gpu_tests[@]/#/test_}" > "$stage/tests.txt"
  cp bench/gpu_launch.sh "$stage/run"
  # Open MPI's runtime, laid out as the launcher's OPAL_* and PMIX_* say: mpirun (orterun), orted (the
  # daemon of a remote node's ranks), the plugins and the help texts mpirun prints from.
  strip --strip-unneeded -o "$stage/bin/mpirun" "$(readlink -f "$(command -v orterun)")"
  strip --strip-unneeded -o "$stage/bin/orted" "$(readlink -f "$(command -v orted)")"
  mkdir -p "$stage/mpi/lib/openmpi" "$stage/mpi/lib/pmix" "$stage/mpi/share" "$stage/mpi/etc"
  for p in "$ompi_plugins"/mca_*.so; do
    [[ $(basename "$p") =~ $plugins_left_out ]] || cp "$p" "$stage/mpi/lib/openmpi/"
  done
  cp "$pmix_plugins"/*.so "$stage/mpi/lib/pmix/"
  cp -r "$ompi_share" "$stage/mpi/share/openmpi"
  cp -r "$pmix_share" "$stage/mpi/share/pmix"
  cp "$ompi_etc/openmpi-default-hostfile" "$stage/mpi/etc/"
  {
    echo "# Debian's settings (/etc/openmpi/openmpi-mca-params.conf), then the bundle's (bench/gpu_bundle.sh)."
    grep -v '^#' "$ompi_etc/openmpi-mca-params.conf" | grep .
    echo "# Containers often forbid reading another process's memory (CMA needs ptrace): copy through shared memory."
    echo "btl_vader_single_copy_mechanism = none"
  } > "$stage/mpi/etc/openmpi-mca-params.conf"
  # Every library the binaries and plugins load (ldd lists them transitively), less the system and NVIDIA sets.
  for b in "$stage"/bin/* "$stage"/mpi/lib/*/*.so; do
    ldd "$b" | awk '$2 == "=>" {print $1, $3}'
  done | sort -u | while read -r name path; do
    [ "$path" = not ] && { echo "gpu_bundle: $name not found here" >&2; exit 1; }
    [[ $name =~ $system_re || $name =~ $cuda_re ]] || cp -L "$path" "$stage/lib/$name"
  done
  {
    echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- . ':!gpu-bundle' || echo ' + uncommitted changes')"
    echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
    echo "nvcc: $(nvcc --version | tail -n 1)"
    echo "cudnn.h: $(awk '/define CUDNN_(MAJOR|MINOR|PATCHLEVEL) /{printf "%s%s", s, $3; s="."}' /usr/local/cuda/include/cudnn_version.h)"
    grep -E '^(CMAKE_CUDA_ARCHITECTURES|CMAKE_CXX_FLAGS|RTUNE_[A-Z_]+):' build-bundle/CMakeCache.txt || true
  } > "$stage/BUILD-INFO"
  tar -C "$stage" -cf - . | xz -T"${JOBS:-2}" -9 > "$out.tmp"
  mv "$out.tmp" "$out"
  local raw packed tracked
  raw=$(du -sb "$stage" | cut -f1)
  packed=$(stat -c %s "$out")
  tracked=$(git ls-files -z | xargs -0 stat -c %s 2> /dev/null | awk '{s += $1} END {print s}')
  echo "bundle: $out $((packed >> 20)) MiB ($packed bytes; $((raw >> 20)) MiB unpacked: $(ls "$stage/bin" | wc -l) binaries, $(ls "$stage/lib" | wc -l) libraries, $(ls "$stage"/mpi/lib/*/*.so | wc -l) Open MPI plugins)"
  echo "carried in all: tracked files $((tracked >> 20)) MiB + bundle = $(((tracked + packed) >> 20)) MiB of the ${limit_mib} MiB limit"
  if ((tracked + packed > limit_mib << 20)); then
    echo "gpu_bundle: over the ${limit_mib} MiB the device tool carries" >&2
    exit 1
  fi
}

# Unpacks the bundle and lists the libraries of each binary and Open MPI plugin with the launcher's
# library path, in a mount namespace whose /usr/lib/x86_64-linux-gnu holds only the system set (glibc,
# libstdc++, libgcc_s): a library found here only among the system's other libraries shows as "not found".
# Every library must then come from the bundle's lib/, the CUDA folders (NVIDIA libraries only) or that
# system set. Then, with the system's Open MPI hidden as well (its plugins, /usr/share/openmpi and
# /etc/openmpi), the bundle's mpirun runs 2 CPU ranks of rtune train on a tiny image folder.
check() {
  [ -f "$out" ] || { echo "gpu_bundle: no $out; run bench/gpu_bundle.sh first" >&2; exit 1; }
  local dir sys empty multiarch=/usr/lib/x86_64-linux-gnu
  dir=$(mktemp -d)
  sys=$(mktemp -d)
  empty=$(mktemp -d)
  trap 'rm -rf "$dir" "$sys" "$empty"' RETURN
  tar -C "$dir" -xJf "$out"
  sed -n 1,2p "$dir/BUILD-INFO"
  for f in "$multiarch"/*; do
    [[ $(basename "$f") =~ $system_re ]] && cp -L "$f" "$sys/"
  done
  # bash's own libraries too, for the launcher (`run` is a bash script); the classification below still
  # fails a binary that loads one of them.
  ldd /bin/bash | awk '$3 ~ /^\// {print $3}' | xargs cp -L -t "$sys/"
  # (the system folder last: mount itself needs libraries of it)
  local hide="mount --bind '$empty' '$ompi_share' && mount --bind '$empty' '$ompi_etc' && mount --bind '$sys' '$multiarch'"
  local libpath lists objs
  libpath=$("$dir/run" --libpath)
  echo "library path: $libpath"
  objs=$(cd "$dir" && ls bin/* mpi/lib/*/*.so)
  # ld.so's own listing (what ldd -r does: every symbol bound too), one file after another. A plugin binds
  # symbols of libmpi, which the process that loads it has loaded: preloaded here.
  local list_cmd="for b in $(tr '\n' ' ' <<< "$objs"); do echo \"== \$b\"; case \$b in *.so) pre='$dir/lib/libmpi.so.40' ;; *) pre= ;; esac
    LD_PRELOAD=\$pre LD_TRACE_LOADED_OBJECTS=1 LD_WARN=yes LD_BIND_NOW=yes LD_LIBRARY_PATH='$libpath' /lib64/ld-linux-x86-64.so.2 '$dir'/\$b; done"
  local isolated=1
  if lists=$(unshare -m sh -c "$hide && $list_cmd" 2> /dev/null); then
    echo "system libraries hidden: $multiarch holds only $(ls "$sys" | tr '\n' ' ')"
  else
    isolated=0
    echo "unshare -m refused: listing with the system's libraries visible (the classification below still holds)"
    lists=$(sh -c "$list_cmd")
  fi
  local bad=0 cuda_used=""
  while read -r obj; do
    local n_bundle=0 n_cuda=0 n_sys=0 problems=""
    while read -r name arrow path _; do
      if [ "$name $arrow" = "undefined symbol:" ]; then problems+=" undefined:$path"; continue; fi
      [ "$arrow" = "=>" ] || continue
      if [ "$path" = not ]; then problems+=" $name(not found)"
      elif [[ $path == "$dir/lib/"* ]]; then n_bundle=$((n_bundle + 1))
      elif [[ $name =~ $cuda_re ]] && [[ ":$libpath:" == *":$(dirname "$path"):"* ]]; then
        n_cuda=$((n_cuda + 1)); cuda_used+=" $name"
      elif [[ $name =~ $system_re ]]; then n_sys=$((n_sys + 1))
      else problems+=" $name($path)"
      fi
    done < <(awk -v b="== $obj" '$0 == b {on = 1; next} /^== / {on = 0} on' <<< "$lists")
    if [ -n "$problems" ]; then
      echo "FAIL $obj:$problems"
      bad=1
    elif [[ $obj == bin/* ]]; then
      echo "ok   $obj: $n_bundle from the bundle, $n_cuda NVIDIA, $n_sys system"
    fi
  done <<< "$objs"
  [ "$bad" = 0 ] && echo "ok   mpi/lib/: $(grep -c '\.so$' <<< "$objs") Open MPI and PMIx plugins"
  echo "bundle lib/: $(ls "$dir/lib" | tr '\n' ' ')"
  echo "NVIDIA libraries taken from the GPU machine: $(tr ' ' '\n' <<< "$cuda_used" | sort -u | tr '\n' ' ')"
  echo "needs at most: $(objdump -T "$dir"/bin/* "$dir"/lib/* "$dir"/mpi/lib/*/*.so 2> /dev/null |
    grep -oE 'GLIBC_[0-9.]+|GLIBCXX_[0-9.]+' | sort -u -V | awk -F_ '{m[$1] = $0} END {print m["GLIBC"], m["GLIBCXX"]}'
    ) (the GPU machine's must be as new)"
  [ "$bad" = 0 ] && echo "check: every binary's and plugin's libraries and symbols resolve to the bundle, the NVIDIA set or the system set"
  mpi_smoke "$dir" "$isolated" "$hide" || bad=1
  return "$bad"
}

# 2 CPU ranks of the bundle's rtune under the bundle's mpirun (the real-CUDA build: --device cpu needs no
# GPU, but its CUDA libraries must load: /usr/local/cuda/lib64 stands for the GPU machine's pip folders).
mpi_smoke() {
  local dir=$1 isolated=$2 hide=$3 data=$1/smoke-data
  python3 - "$data" << 'EOF'
import os, sys
from PIL import Image
for split in ("train", "val"):
    for c in range(2):
        os.makedirs(os.path.join(sys.argv[1], split, f"c{c}"))
        for i in range(4):
            Image.new("RGB", (16, 16), (200 * c, 40 * i, 90)).save(os.path.join(sys.argv[1], split, f"c{c}", f"{i}.png"))
EOF
  local cmd="env -u LD_LIBRARY_PATH RTUNE_CUDA_LIBS=/usr/local/cuda/lib64 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    timeout -s KILL 120 '$dir/run' mpirun --oversubscribe --bind-to none -np 2 '$dir/bin/rtune' train --device cpu \
    --data '$data' --arch resnet18 --pretrained none --width 4 --batch 4 --epochs 1 --threads 1 --no-progress --out '$dir/smoke-run'"
  local log rc=0
  if [ "$isolated" = 1 ]; then
    log=$(unshare -m sh -c "$hide && $cmd" 2>&1) || rc=$?
  else
    log=$(sh -c "$cmd" 2>&1) || rc=$?
  fi
  if [ "$rc" = 0 ] && grep -q "2 ranks" <<< "$log"; then
    echo "mpi: 2 ranks of rtune train ran under the bundle's mpirun$([ "$isolated" = 1 ] && echo ", the system's Open MPI hidden"):"
    grep -E "^ranks: |^epoch 1/1: " <<< "$log" | sed 's/^/  /'
  else
    echo "FAIL mpi: mpirun -np 2 rtune train (exit $rc):"
    tail -n 30 <<< "$log" | sed 's/^/  /'
    return 1
  fi
}

case "${1:-}" in
  --check) check ;;
  "") build; pack; check ;;
  *) sed -n '2,10p' "$0"; exit 2 ;;
esac
