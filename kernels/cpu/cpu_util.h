// Shared helpers of the CPU backend: dtype dispatch, element conversion, dense-output handling.
#pragma once
#include <bit>
#include <cstdint>
#include <cstring>
#include <vector>
#include "engine/half.h"
#include "engine/tensor.h"

namespace rtune::cpu {

// Calls f(T{}) with T = float or double for the tensor's dtype; other dtypes are an error naming op.
template <class F> void dispatch_float(const char* op, const Tensor& t, F&& f) {
  switch (t.dtype()) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    default: fail("{}: the CPU backend computes in float32 or float64, got {}", op, t.str());
  }
}

// Element load/store through double-free paths for every storage type.
template <class T> struct Elem {
  static float load_f(const void* p) { return float(*static_cast<const T*>(p)); }
};
struct BF16Tag {};
struct F16Tag {};

template <class F> void dispatch_any(DType t, F&& f) {
  switch (t) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    case DType::i64: f(int64_t{}); return;
    case DType::u8: f(uint8_t{}); return;
    case DType::bf16: f(BF16Tag{}); return;
    case DType::f16: f(F16Tag{}); return;
  }
}

template <class S> using storage_t = std::conditional_t<std::is_same_v<S, BF16Tag> || std::is_same_v<S, F16Tag>, uint16_t, S>;

template <class D, class S> inline storage_t<D> convert_elem(storage_t<S> v) {
  if constexpr (std::is_same_v<D, S>) {
    return v;
  } else {
    // Go through float for 16-bit types, else through the natural C++ conversion (double for f64).
    using Mid = std::conditional_t<std::is_same_v<S, double> || std::is_same_v<D, double> ||
                                       std::is_same_v<S, int64_t> || std::is_same_v<D, int64_t>,
                                   double, float>;
    Mid m;
    if constexpr (std::is_same_v<S, BF16Tag>) m = Mid(bf16_to_float(v));
    else if constexpr (std::is_same_v<S, F16Tag>) m = Mid(f16_to_float(v));
    else m = Mid(v);
    if constexpr (std::is_same_v<D, BF16Tag>) return float_to_bf16(float(m));
    else if constexpr (std::is_same_v<D, F16Tag>) return float_to_f16(float(m));
    else return static_cast<D>(m);
  }
}

// relu_backward's value in double: g where y > 0, else +0, by masking the bits rather than branching
// (a ReLU's sign pattern is a coin toss for a branch predictor; the select vectorises).
template <class T> inline double masked_grad(T g, T y) {
  const double v = double(g);
  const uint64_t keep = uint64_t(0) - uint64_t(y > T(0));
  return std::bit_cast<double>(std::bit_cast<uint64_t>(v) & keep);
}

// True when t is channels-last and not also NCHW (a [N, C, 1, 1] or one-channel tensor is both: it stays on
// the NCHW kernels, where it is the same memory).
inline bool strictly_channels_last(const Tensor& t) {
  return t.suggest_memory_format() == MemoryFormat::channels_last;
}
// t itself when undefined or already channels-last, else a channels-last copy.
inline Tensor as_channels_last(const Tensor& t) {
  return !t.defined() || t.is_contiguous(MemoryFormat::channels_last) ? t : t.contiguous(MemoryFormat::channels_last);
}

// This thread's scratch buffer number `slot` of at least n elements: grown, never shrunk, so a step
// allocates nothing once the first has run.
template <class T, int slot = 0> T* thread_scratch(size_t n) {
  thread_local std::vector<T> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// Runs fn(y_dense_nchw) where y_dense_nchw is y itself when y is NCHW-contiguous, else a temporary that
// is copied into y afterwards (for kernels written for NCHW only; the hot ones also read and write
// channels-last, which CPU compute on oneDNN uses: conv, batch norm, pooling, the elementwise ops).
template <class F> void with_contiguous_output(Tensor& y, F&& fn) {
  if (y.is_contiguous()) {
    fn(y);
    return;
  }
  Tensor tmp = empty(y.shape(), {y.dtype(), y.device()});
  fn(tmp);
  y.copy_(tmp);
}

}  // namespace rtune::cpu
