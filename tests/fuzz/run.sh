#!/usr/bin/env bash
# Builds the libFuzzer harnesses (RTUNE_FUZZ=ON, clang, ASan + UBSan) in build-fuzz and runs each for
# a bounded time over its seed corpus, one after another; fails if any harness finds a crash, a
# sanitizer report, a leak, a timeout or an out-of-memory input (libFuzzer then saves the input under
# build-fuzz/fuzz-artifacts/<harness>/).
#   tests/fuzz/run.sh [seconds-per-harness] [harness...]   default: 60 s, every harness
#   RUNS=1000000 tests/fuzz/run.sh 7200                    stop each at 1M executions (or 2 h)
#   tests/fuzz/run.sh 14400 jpeg_huffman                   hours on one harness, locally
# New inputs found accumulate in build-fuzz/fuzz-corpus/<harness>/ (kept between runs, not committed);
# tests/fuzz/<dir>/ are the committed seeds and regression inputs. BUILD_DIR and JOBS may be set.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
shift || true
BUILD_DIR=${BUILD_DIR:-build-fuzz}
all=(zip pickle pth safetensors checkpoint model_file jpeg jpeg_region jpeg_huffman stb webp tiff)
harnesses=("${@:-${all[@]}}")
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)

cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRTUNE_FUZZ=ON -DRTUNE_CUDA=OFF \
  -DRTUNE_CUDA_SIM=OFF -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" >/dev/null
cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" --target $(printf 'fuzz_%s ' "${harnesses[@]}")

# The JPEG harnesses share the JPEG seeds; each may add its own regression inputs in tests/fuzz/<name>/.
seed_dirs() {
  case $1 in
    jpeg_region | jpeg_huffman) echo tests/fuzz/jpeg ;;
  esac
  [ -d "tests/fuzz/$1" ] && echo "tests/fuzz/$1"
  return 0
}

failed=()
printf '%-13s %12s %9s %7s %7s  %s\n' harness executions exec/s cov ft result
for h in "${harnesses[@]}"; do
  corpus="$BUILD_DIR/fuzz-corpus/$h" artifacts="$BUILD_DIR/fuzz-artifacts/$h" log="$BUILD_DIR/fuzz-logs/$h.log"
  rm -rf "$artifacts"  # only this run's findings
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  runs=()
  [ -n "${RUNS:-}" ] && runs=(-runs="$RUNS")
  rc=0
  # -timeout: no input may take 10 s; -rss_limit_mb: none may need 2.5 GB (the harnesses decode images
  # of at most 1M pixels).
  "$BUILD_DIR/fuzz_$h" -max_total_time="$seconds" "${runs[@]}" -timeout=10 -rss_limit_mb=2560 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus" $(seed_dirs "$h") >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  result=ok
  if [ "$rc" -ne 0 ]; then
    result="FAILED (exit $rc; see $log and $artifacts/)"
    failed+=("$h")
  fi
  printf '%-13s %12s %9s %7s %7s  %s\n' "$h" "${execs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" "$result"
  [ "$rc" -ne 0 ] && grep -m 20 -E 'ERROR|SUMMARY|property violated|Test unit written' "$log" || true
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]}"
  exit 1
fi
echo "fuzzing: no crash in ${#harnesses[@]} harnesses (${seconds} s each)"
