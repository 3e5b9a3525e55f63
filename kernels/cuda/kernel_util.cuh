// Device-side helpers shared by the backend's own kernels (compiled by nvcc and, in the simulated
// build, as host C++): strided indexing of up to 8 dims, the element types of rtune tensors with
// their conversions (bf16 / f16 round-to-nearest-even as engine/half.h and torch's .to()), and a
// block-wide sum in shared memory. Host helpers: dtype dispatch and grid sizes.
#pragma once
#include <cstdint>
#include <cstring>

#include "engine/tensor.h"
#include "kernels/cuda/launch.cuh"

namespace rtune::cuda {

// ---------------------------------------------------------------- strided indexing
struct Indexer {
  int nd = 0;
  int64_t size[8] = {};
  int64_t stride[8] = {};
  // Element offset of the row-major linear index i.
  RT_HOST_DEVICE int64_t offset(int64_t i) const {
    int64_t off = 0;
    for (int d = nd - 1; d >= 0; --d) {
      int64_t q = i / size[d];
      off += (i - q * size[d]) * stride[d];
      i = q;
    }
    return off;
  }
};
inline Indexer indexer_of(const Tensor& t) {
  RTUNE_CHECK(t.dim() <= 8, "CUDA kernels index at most 8 dimensions, got {}", t.str());
  Indexer ix;
  ix.nd = int(t.dim());
  for (int d = 0; d < ix.nd; ++d) {
    ix.size[d] = t.shape()[size_t(d)];
    ix.stride[d] = t.strides()[size_t(d)];
  }
  return ix;
}

// ---------------------------------------------------------------- element types
struct bf16_t { uint16_t bits; };
struct f16_t { uint16_t bits; };

RT_HOST_DEVICE inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
RT_HOST_DEVICE inline float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

RT_HOST_DEVICE inline float to_float(bf16_t h) { return bits_f32(uint32_t(h.bits) << 16); }
RT_HOST_DEVICE inline bf16_t to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return {uint16_t((u >> 16) | 0x40)};  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return {uint16_t(u >> 16)};
}
RT_HOST_DEVICE inline float to_float(f16_t h) {
  uint32_t sign = uint32_t(h.bits & 0x8000u) << 16, exp = (h.bits >> 10) & 0x1fu, mant = h.bits & 0x3ffu, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {
      int e = -1;
      do { mant <<= 1; ++e; } while (!(mant & 0x400u));
      bits = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  return bits_f32(bits);
}
RT_HOST_DEVICE inline f16_t to_f16(float f) {
  uint32_t u = f32_bits(f);
  uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a >= 0x7f800000u) return {uint16_t(sign | (a > 0x7f800000u ? 0x7e00u : 0x7c00u))};
  if (a >= 0x477ff000u) return {uint16_t(sign | 0x7c00u)};
  if (a < 0x38800000u) {
    if (a < 0x33000000u) return {sign};
    uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u, shift = 126 - e;
    uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return {uint16_t(sign | r)};
  }
  uint32_t r = a - 0x38000000u, rem = r & 0x1fffu;
  r >>= 13;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
  return {uint16_t(sign | r)};
}

template <class T> struct is_half16 { static constexpr bool value = false; };
template <> struct is_half16<bf16_t> { static constexpr bool value = true; };
template <> struct is_half16<f16_t> { static constexpr bool value = true; };

// The arithmetic type of an element type: 16-bit floats compute in float.
template <class T> struct compute_of { using type = T; };
template <> struct compute_of<bf16_t> { using type = float; };
template <> struct compute_of<f16_t> { using type = float; };
template <class T> using compute_t = typename compute_of<T>::type;

template <class T> RT_HOST_DEVICE inline compute_t<T> load(T v) {
  if constexpr (is_half16<T>::value) return to_float(v);
  else return v;
}
template <class T, class C> RT_HOST_DEVICE inline T store(C v) {
  if constexpr (std::is_same_v<T, bf16_t>) return to_bf16(float(v));
  else if constexpr (std::is_same_v<T, f16_t>) return to_f16(float(v));
  else return T(v);
}

// dst = src as the CPU backend converts (kernels/cpu/cpu_util.h convert_elem): through double when
// either side is f64 or i64, else through float.
template <class D, class S> RT_HOST_DEVICE inline D convert(S v) {
  if constexpr (std::is_same_v<D, S>) {
    return v;
  } else {
    constexpr bool wide = std::is_same_v<S, double> || std::is_same_v<D, double> || std::is_same_v<S, int64_t> ||
                          std::is_same_v<D, int64_t>;
    using Mid = std::conditional_t<wide, double, float>;
    Mid m;
    if constexpr (is_half16<S>::value) m = Mid(to_float(v));
    else m = Mid(v);
    if constexpr (is_half16<D>::value) return store<D>(float(m));
    else return static_cast<D>(m);
  }
}

// ---------------------------------------------------------------- host-side dispatch
// f(T{}) for every rtune dtype.
template <class F> void dispatch_all(DType t, F&& f) {
  switch (t) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    case DType::bf16: f(bf16_t{}); return;
    case DType::f16: f(f16_t{}); return;
    case DType::i64: f(int64_t{}); return;
    case DType::u8: f(uint8_t{}); return;
  }
}
// f(T{}) for floating dtypes; `op` names the failure.
template <class F> void dispatch_floating(const char* op, const Tensor& t, F&& f) {
  switch (t.dtype()) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    case DType::bf16: f(bf16_t{}); return;
    case DType::f16: f(f16_t{}); return;
    default: fail("{}: the CUDA backend computes on floating tensors, got {}", op, t.str());
  }
}
// f(T{}) for f32 / f64 only (ops whose CPU oracle exists only for these).
template <class F> void dispatch_f32_f64(const char* op, const Tensor& t, F&& f) {
  switch (t.dtype()) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    default: fail("{}: the CUDA backend computes this op in float32 or float64, got {}", op, t.str());
  }
}
template <class T> T* dptr(const Tensor& t) { return static_cast<T*>(t.raw_data()); }

constexpr int kThreads = 256;

// ---------------------------------------------------------------- block reductions
// Sum of v over the block (blockDim.x a power of two ≤ 1024, 1-d blocks); `smem` holds blockDim.x
// values. Every thread gets the result. Contains barriers: call from all threads.
template <class A> RT_DEVICE inline A block_sum(A v, A* smem) {
  const unsigned t = threadIdx.x;
  smem[t] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s) smem[t] = smem[t] + smem[t + s];
    __syncthreads();
  }
  A r = smem[0];
  __syncthreads();  // smem may be reused right after
  return r;
}
// Max with NaN propagation (as torch.max).
template <class A> RT_DEVICE inline A nan_max(A a, A b) { return (a != a || a > b) ? a : (b != b ? b : (a > b ? a : b)); }
template <class A> RT_DEVICE inline A block_max(A v, A* smem) {
  const unsigned t = threadIdx.x;
  smem[t] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s) smem[t] = nan_max(smem[t], smem[t + s]);
    __syncthreads();
  }
  A r = smem[0];
  __syncthreads();
  return r;
}

}  // namespace rtune::cuda
