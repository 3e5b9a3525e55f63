// Helpers of the CUDA backend tests: device copies, NaN-prefilled outputs (an output the backend never
// writes fails the comparison), and random inputs. A binary of CUDA cases only skips as a whole without
// a device (tests/cuda/skip_without_device.h); one that mixes in CPU cases skips per case
// (CUDA_TEST_CASE in tests/ops/ops_test_util.h).
#pragma once
#include <cmath>

#include "engine/random_tensor.h"
#include "engine/tensor.h"
#include "tests/core/test_util.h"

namespace rtune::cudatest {

inline Device gpu() { return Device::cuda(0); }
inline Tensor dev(const Tensor& t) { return t.to(gpu()); }

// An output tensor on the device, every element NaN (integer dtypes: 77, as NaN has no integer), in
// the given layout.
inline Tensor nan_out(const Shape& s, DType dt = DType::f32, MemoryFormat fmt = MemoryFormat::contiguous) {
  Tensor t = empty(s, {dt, gpu(), fmt});
  t.fill_(is_floating(dt) ? std::nan("") : 77.0);
  return t;
}
inline Tensor nan_out_like(const Tensor& t) {
  return nan_out(t.shape(), t.dtype(), t.suggest_memory_format());
}
// A CPU tensor of N(0,1) values (f32 unless given), optionally in channels-last memory.
inline Tensor randn_cpu(const Shape& s, Rng& r, DType dt = DType::f32, MemoryFormat fmt = MemoryFormat::contiguous) {
  Tensor t = test::randn_away_from_zero(s, r, 0.0).to(dt);
  return fmt == MemoryFormat::contiguous ? t : t.contiguous(fmt);
}

}  // namespace rtune::cudatest
