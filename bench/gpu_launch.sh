#!/usr/bin/env bash
# The launcher of the GPU bundle (bench/gpu_bundle.sh copies it into the bundle as `run`):
#   <bundle>/run PROGRAM [ARGS...]    runs <bundle>/bin/PROGRAM
#   <bundle>/run mpirun [MPIRUN ARGS] <bundle>/bin/rtune ...   N ranks with the bundle's Open MPI
#   <bundle>/run --ldd PROGRAM        ldd of it, under the same library path
#   <bundle>/run --libpath            prints that library path
# The library path is the bundle's lib/ (everything the binaries need beyond glibc, libstdc++ and libgcc)
# followed by the machine's NVIDIA libraries (cudart, cuBLAS, cuDNN, NCCL, the driver's libcuda), which
# the bundle does not carry: RTUNE_CUDA_LIBS when set, else the folders of the pip nvidia-* packages
# beside python3's PyTorch (and torch/lib where the wheel carries one of them itself), then the CUDA
# toolkit's and the driver's folders that exist; then the caller's LD_LIBRARY_PATH.
# The bundle's Open MPI (bin/mpirun, bin/orted, mpi/: plugins, help texts, settings) was built for /usr:
# OPAL_* and PMIX_* point it at the bundle instead. mpirun's local ranks inherit this environment, so
# `mpirun ... <bundle>/bin/rtune` needs no `run` per rank.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

cuda_libs() {
  if [ -n "${RTUNE_CUDA_LIBS:-}" ]; then
    printf '%s' "$RTUNE_CUDA_LIBS"
    return
  fi
  local dirs
  dirs=$(python3 - 2> /dev/null << 'EOF' || true
import glob, importlib.util, os
try:
    import nvidia
    roots = list(nvidia.__path__)
except ImportError:
    roots = []
wanted = ("libcudart.so", "libcublas.so", "libcublasLt.so", "libcudnn.so", "libnvrtc.so", "libnvJitLink.so",
          "libnccl.so")
dirs = []
for r in roots:
    for p in sorted(glob.glob(os.path.join(r, "**", "lib*.so*"), recursive=True)):
        if os.path.basename(p).startswith(wanted) and os.path.dirname(p) not in dirs:
            dirs.append(os.path.dirname(p))
# Some torch wheels carry NCCL (or more) in torch/lib instead of an nvidia-* package; found without
# importing torch (seconds), and after the nvidia folders so that those win.
torch = importlib.util.find_spec("torch")
if torch and torch.submodule_search_locations:
    lib = os.path.join(torch.submodule_search_locations[0], "lib")
    if any(glob.glob(os.path.join(lib, w + "*")) for w in wanted):
        dirs.append(lib)
print(":".join(dirs), end="")
EOF
  )
  for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib /usr/local/nvidia/lib64; do
    [ -d "$d" ] && dirs="${dirs:+$dirs:}$d"
  done
  printf '%s' "$dirs"
}

libpath="$here/lib:$(cuda_libs)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"  # the caller's last (the driver's libcuda may be there)
# Open MPI 4.1's installdirs read these (opal/mca/installdirs/env), PMIx 4's likewise (pinstalldirs);
# set one by one because Debian's built-in paths are not all under its prefix (/etc/openmpi).
mpi=$here/mpi
export OPAL_PREFIX=$mpi OPAL_EXEC_PREFIX=$mpi OPAL_BINDIR=$here/bin OPAL_LIBDIR=$here/lib
export OPAL_PKGLIBDIR=$mpi/lib/openmpi OPAL_DATAROOTDIR=$mpi/share OPAL_DATADIR=$mpi/share
export OPAL_PKGDATADIR=$mpi/share/openmpi OPAL_SYSCONFDIR=$mpi/etc
export PMIX_PREFIX=$mpi PMIX_EXEC_PREFIX=$mpi PMIX_BINDIR=$here/bin PMIX_LIBDIR=$here/lib
export PMIX_PKGLIBDIR=$mpi/lib/pmix PMIX_DATAROOTDIR=$mpi/share PMIX_DATADIR=$mpi/share PMIX_PKGDATADIR=$mpi/share/pmix PMIX_SYSCONFDIR=$mpi/etc
# No hwloc plugins are carried (its core topology serves Open MPI): not the machine's, of another hwloc.
export HWLOC_PLUGINS_PATH=$mpi/lib/hwloc
case "${1:-}" in
  --libpath) echo "$libpath" ;;
  --ldd) LD_LIBRARY_PATH=$libpath exec ldd "$here/bin/$2" ;;
  "" | -h | --help) sed -n '2,14p' "$0" ;;
  *) prog=$1; shift; LD_LIBRARY_PATH=$libpath exec "$here/bin/$prog" "$@" ;;
esac
