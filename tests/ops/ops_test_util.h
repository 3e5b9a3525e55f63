// Helpers shared by the per-op tests (tests/ops/test_<stem>.cpp): float64 inputs for the gradient
// checks and, where the build has a CUDA backend (RTUNE_TEST_HAS_CUDA), the CPU-vs-CUDA parity helpers.
#pragma once
#include "engine/random_tensor.h"
#include "engine/tensor.h"
#include "tests/core/test_util.h"
#if defined(RTUNE_TEST_HAS_CUDA)
#include "kernels/cuda/runtime.h"
#include "tests/cuda/cuda_test_util.h"
#endif

namespace rtune::opstest {

inline Tensor rn(const Shape& s, Rng& r) { return randn(s, r, {DType::f64}); }

#if defined(RTUNE_TEST_HAS_CUDA)
constexpr MemoryFormat kNCHW = MemoryFormat::contiguous, kNHWC = MemoryFormat::channels_last;

inline void check_dev(const Tensor& got_dev, const Tensor& ref, double rtol, double atol) {
  REQUIRE(got_dev.is_cuda());
  CHECK_CLOSE(got_dev.cpu(), ref, rtol, atol);
}
inline Tensor randn_f(const Shape& s, Rng& r, MemoryFormat fmt = kNCHW) {
  return cudatest::randn_cpu(s, r, DType::f32, fmt);
}
// A non-contiguous view with the given shape: the first `shape` elements of a wider tensor along W.
inline Tensor strided(const Shape& s, Rng& r) {
  Shape wide = s;
  wide.back() += 3;
  return randn_f(wide, r).narrow(int64_t(s.size()) - 1, 1, s.back());
}
#endif

}  // namespace rtune::opstest

#if defined(RTUNE_TEST_HAS_CUDA)
// A CPU-vs-CUDA case. A real-CUDA build run without a GPU skips it (doctest reports it skipped) while
// the file's CPU cases still run; the simulated device is always present, so there every case runs.
#define CUDA_TEST_CASE(name) TEST_CASE(name * doctest::skip(!::rtune::cuda::rt::device_present()))
#endif
