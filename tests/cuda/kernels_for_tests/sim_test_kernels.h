// Host entry points of the small kernels the simulated-device tests run (sim_test_kernels.cu).
// Pointers are device pointers; every call launches on `s` through launch.cuh.
#pragma once
#include <cstdint>

#include "kernels/cuda/runtime.h"

namespace rtune::cuda::testk {

// y[i] = a * x[i] + y[i], grid-stride over n.
void axpy(const float* x, float* y, float a, int64_t n, rt::Stream s);
// out[b] = sum of x[b*256 .. b*256+255] (zero past n): a 256-thread __shared__ tree reduction.
// With `drop_barrier` the barrier between the loads and the tree is missing (a bug to catch).
void block_sums(const float* x, float* out, int64_t n, bool drop_barrier, rt::Stream s);
// *out += sum(x) by warp shuffles (__shfl_down_sync) and one atomicAdd per warp; `block` threads.
void warp_sum(const float* x, float* out, int64_t n, int block, rt::Stream s);
// out[i] = sum over x's 32-lane warp by __shfl_xor_sync butterflies (every lane gets the total).
void warp_allreduce(const double* x, double* out, int64_t n, rt::Stream s);
// out[w] = __ballot_sync(full, x[i] > 0) for the warp w covering x[32w..32w+31]; n % 32 == 0.
void warp_ballot(const float* x, unsigned* out, int64_t n, rt::Stream s);
// out[i] = x of lane (lane ^ 1) within 8-lane segments via __shfl_sync(width 8) and the lane - 1
// (own value for a segment's first lane) via __shfl_up_sync(width 8); n % 32 == 0.
void warp_segments(const int* x, int* idx_out, int* up_out, int64_t n, rt::Stream s);
// Atomics from many blocks: hist[v % bins] += 1 (int), *total += v (unsigned long long),
// *maxv = max(v) (int), *fsum += float(v) (atomicAdd float), *csum += v via an atomicCAS loop.
void atomics(const int* v, int64_t n, int* hist, int bins, unsigned long long* total, int* maxv, float* fsum,
             int* csum, rt::Stream s);
// y = x reversed within each block of `block` elements, staged in dynamic shared memory.
void reverse_blocks(const float* x, float* y, int64_t n, int block, rt::Stream s);
// A (gx, gy) grid of (bx, by, bz) blocks: out[global linear thread id] = that id, each thread
// computing it from blockIdx/blockDim/threadIdx/gridDim.
void index_3d(int* out, int gx, int gy, int bx, int by, int bz, rt::Stream s);
// Faulty kernels: threads 0..15 return before a __syncthreads() (divergent barrier), threads
// reach different __syncthreads() calls, and a shuffle whose mask leaves out a lane it reads.
void divergent_barrier(float* x, rt::Stream s);
void split_barriers(float* x, rt::Stream s);
void shuffle_outside_mask(float* x, rt::Stream s);
// A pointer passed inside a struct argument: span.data[i] *= a for i < span.n.
struct FloatSpan {
  float* data;
  int64_t n;
};
void scale_span(FloatSpan span, float a, rt::Stream s);
// out[0] = *table[0]: reads through a pointer stored in device memory (table), which the simulator
// does not open unless `out`'s allocation holds it (it names only what pointer arguments point into).
void load_through_table(float* const* table, float* out, rt::Stream s);
// Simulator only: recursion `depth` deep with 1 KiB frames (overflows a fiber stack).
void deep_recursion(int* out, int depth, rt::Stream s);
// y[i] = 1 for i in [0, n] — one element past the end (an overrun for the sanitizer test).
void write_one_past(float* y, int64_t n, rt::Stream s);

}  // namespace rtune::cuda::testk
