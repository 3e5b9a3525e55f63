#!/usr/bin/env bash
# Builds rtune with the simulated CUDA device and runs the whole test suite (the README's test command).
# BUILD_DIR (default build-sim) and JOBS (default: all cores) may be set.
set -euo pipefail
# Tests run two at a time on few cores: OpenMP threads must sleep, not spin, while waiting.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-sim}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DRTUNE_CUDA_SIM=ON ${CMAKE_EXTRA:-}
cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${JOBS:-$(nproc)}"
