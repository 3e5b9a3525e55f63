#!/usr/bin/env bash
# Installs everything rtune builds against, from Debian packages. Used by the README and by .ci/run.
# The CUDA toolkit (nvcc, cuDNN, cuBLAS) is optional and comes from NVIDIA, not from here.
set -euo pipefail
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
packages=(
  cmake ninja-build g++ pkg-config
  libeigen3-dev doctest-dev libstb-dev libturbojpeg0-dev libjpeg62-turbo-dev libwebp-dev libtiff-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev libboost-context-dev libdnnl-dev libopenmpi-dev openmpi-bin
)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
echo "rtune dependencies present."
