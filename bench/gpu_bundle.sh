#!/usr/bin/env bash
# Builds HERE, where nvcc, cuDNN and cuBLAS are installed but no GPU is needed, the real-CUDA binaries
# that bench/gpu.sh runs on a lent GPU machine, and packs them with every shared library that machine
# may lack into one file, gpu-bundle/rtune-gpu.tar.xz (git-ignored; the device tool's `carry` takes it).
#
#   bash bench/gpu_bundle.sh           configure build-bundle/, build, pack, then --check
#   bash bench/gpu_bundle.sh --check   prove the packed bundle: unpack it and list every binary's shared
#                                      libraries and bind its symbols with the system's library folder hidden
#
# What the bundle holds: bin/ (rtune and the CUDA test binaries, stripped), lib/ (every shared library they
# load except glibc, libstdc++ and libgcc_s, which any x86-64 Linux has, and the NVIDIA set: libcuda,
# cudart, cuBLAS, cuDNN, taken at run time from the GPU machine's CUDA toolkit or the pip nvidia-*
# packages beside its PyTorch), `run` (bench/gpu_launch.sh: sets LD_LIBRARY_PATH to lib/ plus those CUDA
# folders), tests.txt (the test binaries bench/gpu.sh runs) and BUILD-INFO. libstdc++ stays out on
# purpose: the GPU machine's is newer, and an older one first on LD_LIBRARY_PATH would break its cuDNN.
# The code is built for x86-64-v3 (AVX2, FMA), not -march=native: the GPU machine's CPU is not this one.
# cudart stays a shared library (the targets link CUDA::cudart); the GPU machine's PyTorch brings
# libcudart.so.13, libcublas.so.13 and libcudnn.so.9, the sonames this CUDA 13 build asks for.
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

build() {
  export PATH=/usr/local/cuda/bin:$PATH
  local launcher=()
  command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache
                                            -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
  # .ci/run's real-CUDA configuration (sm_90-real + PTX from CMakeLists.txt), portable CPU code; no MPI
  # (one GPU, one rank: Open MPI and its plugins would only add libraries the GPU machine lacks).
  cmake -S . -B build-bundle -G Ninja -DCMAKE_BUILD_TYPE=Release -DRTUNE_CUDA=ON -DRTUNE_CUDA_SIM=OFF -DRTUNE_MPI=OFF \
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
  # Every library the binaries load (ldd lists them transitively), less the system and NVIDIA sets.
  for b in "$stage"/bin/*; do
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
  echo "bundle: $out $((packed >> 20)) MiB ($packed bytes; $((raw >> 20)) MiB unpacked: $(ls "$stage/bin" | wc -l) binaries, $(ls "$stage/lib" | wc -l) libraries)"
  echo "carried in all: tracked files $((tracked >> 20)) MiB + bundle = $(((tracked + packed) >> 20)) MiB of the ${limit_mib} MiB limit"
  if ((tracked + packed > limit_mib << 20)); then
    echo "gpu_bundle: over the ${limit_mib} MiB the device tool carries" >&2
    exit 1
  fi
}

# Unpacks the bundle and lists each binary's libraries with the launcher's library path, in a mount
# namespace whose /usr/lib/x86_64-linux-gnu holds only the system set (glibc, libstdc++, libgcc_s): a
# library found here only among the system's other libraries shows as "not found". Every library must
# then come from the bundle's lib/, the CUDA folders (NVIDIA libraries only) or that system set.
check() {
  [ -f "$out" ] || { echo "gpu_bundle: no $out; run bench/gpu_bundle.sh first" >&2; exit 1; }
  local dir sys multiarch=/usr/lib/x86_64-linux-gnu
  dir=$(mktemp -d)
  sys=$(mktemp -d)
  trap 'rm -rf "$dir" "$sys"' RETURN
  tar -C "$dir" -xJf "$out"
  sed -n 1,2p "$dir/BUILD-INFO"
  for f in "$multiarch"/*; do
    [[ $(basename "$f") =~ $system_re ]] && cp -L "$f" "$sys/"
  done
  local libpath lists
  libpath=$("$dir/run" --libpath)
  echo "library path: $libpath"
  # ld.so's own listing (what ldd -r does: every symbol bound too), one binary after another, inside the namespace.
  local list_cmd="mount --bind '$sys' '$multiarch' && for b in '$dir'/bin/*; do echo \"== \$b\";
    LD_TRACE_LOADED_OBJECTS=1 LD_WARN=yes LD_BIND_NOW=yes LD_LIBRARY_PATH='$libpath' /lib64/ld-linux-x86-64.so.2 \"\$b\"; done"
  if lists=$(unshare -m sh -c "$list_cmd" 2> /dev/null); then
    echo "system libraries hidden: $multiarch holds only $(ls "$sys" | tr '\n' ' ')"
  else
    echo "unshare -m refused: listing with the system's libraries visible (the classification below still holds)"
    lists=$(for b in "$dir"/bin/*; do echo "== $b"; "$dir/run" --ldd "$(basename "$b")"; done)
  fi
  local bad=0 cuda_used=""
  while read -r bin; do
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
    done < <(awk -v b="== $dir/bin/$bin" '$0 == b {on = 1; next} /^== / {on = 0} on' <<< "$lists")
    if [ -n "$problems" ]; then
      echo "FAIL $bin:$problems"
      bad=1
    else
      echo "ok   $bin: $n_bundle from the bundle, $n_cuda NVIDIA, $n_sys system"
    fi
  done < <(ls "$dir/bin")
  echo "bundle lib/: $(ls "$dir/lib" | tr '\n' ' ')"
  echo "NVIDIA libraries taken from the GPU machine: $(tr ' ' '\n' <<< "$cuda_used" | sort -u | tr '\n' ' ')"
  echo "needs at most: $(objdump -T "$dir"/bin/* "$dir"/lib/* 2> /dev/null | grep -oE 'GLIBC_[0-9.]+|GLIBCXX_[0-9.]+' |
    sort -u -V | awk -F_ '{m[$1] = $0} END {print m["GLIBC"], m["GLIBCXX"]}') (the GPU machine's must be as new)"
  [ "$bad" = 0 ] && echo "check: every binary's libraries and symbols resolve to the bundle, the NVIDIA set or the system set"
  return "$bad"
}

case "${1:-}" in
  --check) check ;;
  "") build; pack; check ;;
  *) sed -n '2,9p' "$0"; exit 2 ;;
esac
