// The CUDA device-side names a kernel source uses (__syncthreads, atomics, warp intrinsics, a few
// math intrinsics), defined for the simulated device. Semantics follow the CUDA C++ Programming
// Guide: atomics return the old value; shuffles follow PTX shfl.sync (width segments, out-of-range
// source reads the own value); all lanes named in a *_sync mask must arrive.
// Included by launch.cuh in RTUNE_CUDA_SIM builds only.
#pragma once
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "kernels/cuda/sim/execution.h"

inline void __syncthreads(std::source_location where = std::source_location::current()) {
  rtune::cuda::sim::sync_block(where);
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }

// ---- atomics (std::atomic_ref: correct even if blocks run on several OS threads)
template <class T>
inline T atomicAdd(T* p, T v) {
  static_assert(std::is_same_v<T, int> || std::is_same_v<T, unsigned> || std::is_same_v<T, unsigned long long> ||
                    std::is_same_v<T, float> || std::is_same_v<T, double>,
                "atomicAdd: CUDA supports int, unsigned, unsigned long long, float, double");
  return std::atomic_ref<T>(*p).fetch_add(v);
}
template <class T>
inline T atomicSub(T* p, T v) {
  static_assert(std::is_same_v<T, int> || std::is_same_v<T, unsigned>, "atomicSub: int or unsigned");
  return std::atomic_ref<T>(*p).fetch_sub(v);
}
template <class T>
inline T atomicExch(T* p, T v) {
  return std::atomic_ref<T>(*p).exchange(v);
}
template <class T>
inline T atomicCAS(T* p, T compare, T v) {
  static_assert(std::is_integral_v<T>, "atomicCAS: integer types (CUDA: int, unsigned, unsigned long long)");
  std::atomic_ref<T>(*p).compare_exchange_strong(compare, v);
  return compare;  // the old value: equal to `compare` on success, the current value on failure
}
template <class T>
inline T atomicMax(T* p, T v) {
  static_assert(std::is_integral_v<T>, "atomicMax: integer types");
  std::atomic_ref<T> a(*p);
  T old = a.load();
  while (old < v && !a.compare_exchange_weak(old, v)) {}
  return old;
}
template <class T>
inline T atomicMin(T* p, T v) {
  static_assert(std::is_integral_v<T>, "atomicMin: integer types");
  std::atomic_ref<T> a(*p);
  T old = a.load();
  while (old > v && !a.compare_exchange_weak(old, v)) {}
  return old;
}

// ---- warp intrinsics
namespace rtune::cuda::sim {
template <class T>
inline T warp_shuffle(WarpOp op, unsigned mask, T var, int arg, int width, std::source_location where) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "warp shuffles move values of at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &var, sizeof(T));
  bits = warp_collective(op, mask, bits, arg, width, where);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}
}  // namespace rtune::cuda::sim

template <class T>
inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32,
                     std::source_location where = std::source_location::current()) {
  return rtune::cuda::sim::warp_shuffle(rtune::cuda::sim::WarpOp::shfl_idx, mask, var, src_lane, width, where);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32,
                        std::source_location where = std::source_location::current()) {
  return rtune::cuda::sim::warp_shuffle(rtune::cuda::sim::WarpOp::shfl_up, mask, var, int(delta), width, where);
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32,
                          std::source_location where = std::source_location::current()) {
  return rtune::cuda::sim::warp_shuffle(rtune::cuda::sim::WarpOp::shfl_down, mask, var, int(delta), width, where);
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32,
                         std::source_location where = std::source_location::current()) {
  return rtune::cuda::sim::warp_shuffle(rtune::cuda::sim::WarpOp::shfl_xor, mask, var, lane_mask, width, where);
}
inline unsigned __ballot_sync(unsigned mask, int pred, std::source_location where = std::source_location::current()) {
  return unsigned(rtune::cuda::sim::warp_collective(rtune::cuda::sim::WarpOp::ballot, mask, pred != 0, 0, 32, where));
}
inline int __all_sync(unsigned mask, int pred, std::source_location where = std::source_location::current()) {
  return int(rtune::cuda::sim::warp_collective(rtune::cuda::sim::WarpOp::all, mask, pred != 0, 0, 32, where));
}
inline int __any_sync(unsigned mask, int pred, std::source_location where = std::source_location::current()) {
  return int(rtune::cuda::sim::warp_collective(rtune::cuda::sim::WarpOp::any, mask, pred != 0, 0, 32, where));
}
inline void __syncwarp(unsigned mask = 0xffffffffu, std::source_location where = std::source_location::current()) {
  rtune::cuda::sim::warp_collective(rtune::cuda::sim::WarpOp::sync, mask, 0, 0, 32, where);
}
// Lanes of this warp that exist and have not exited (the converged-code answer).
inline unsigned __activemask() { return rtune::cuda::sim::active_mask(); }

// ---- math intrinsics used by kernels (the fast-math ones computed exactly here)
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
template <class T>
inline T __ldg(const T* p) { return *p; }
