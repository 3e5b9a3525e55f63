// Small kernels for the simulated-device tests (tests/cuda/test_sim_*.cpp). Compiled as host C++
// in RTUNE_CUDA_SIM builds and by nvcc for sm_90 in the real build (rtune_cuda_compile_check), so
// they also show that one source serves both.
#include "tests/cuda/kernels_for_tests/sim_test_kernels.h"

#include "kernels/cuda/launch.cuh"

namespace rtune::cuda::testk {
namespace {

constexpr unsigned kFull = 0xffffffffu;

RT_GLOBAL void axpy_kernel(const float* x, float* y, float a, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = a * x[i] + y[i];
}

RT_GLOBAL void block_sums_kernel(const float* x, float* out, int64_t n, bool drop_barrier) {
  __shared__ float sh[256];
  const unsigned t = threadIdx.x;
  const int64_t i = blockIdx.x * int64_t(256) + t;
  sh[t] = i < n ? x[i] : 0.f;
  if (!drop_barrier) __syncthreads();
  for (unsigned stride = 128; stride > 0; stride /= 2) {
    if (t < stride) sh[t] += sh[t + stride];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = sh[0];
}

RT_DEVICE inline float warp_reduce(float v) {
  for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(kFull, v, off);
  return v;
}

RT_GLOBAL void warp_sum_kernel(const float* x, float* out, int64_t n) {
  float v = 0.f;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    v += x[i];
  v = warp_reduce(v);
  if (threadIdx.x % 32 == 0) atomicAdd(out, v);
}

RT_GLOBAL void warp_allreduce_kernel(const double* x, double* out, int64_t n) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  double v = i < n ? x[i] : 0.0;
  for (int m = 1; m < 32; m *= 2) v += __shfl_xor_sync(kFull, v, m);
  if (i < n) out[i] = v;
}

RT_GLOBAL void warp_ballot_kernel(const float* x, unsigned* out, int64_t n) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const unsigned b = __ballot_sync(kFull, i < n && x[i] > 0.f);
  if (threadIdx.x % 32 == 0 && i < n) out[i / 32] = b;
}

RT_GLOBAL void warp_segments_kernel(const int* x, int* idx_out, int* up_out, int64_t n) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int v = i < n ? x[i] : 0;
  const unsigned lane = threadIdx.x % 32;
  const int a = __shfl_sync(kFull, v, int((lane ^ 1u) % 8), 8);
  const int b = __shfl_up_sync(kFull, v, 1, 8);
  if (i < n) {
    idx_out[i] = a;
    up_out[i] = b;
  }
}

RT_GLOBAL void atomics_kernel(const int* v, int64_t n, int* hist, int bins, unsigned long long* total, int* maxv,
                              float* fsum, int* csum) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int x = v[i];
    atomicAdd(&hist[x % bins], 1);
    atomicAdd(total, (unsigned long long)x);
    atomicMax(maxv, x);
    atomicAdd(fsum, float(x));
    int old = *csum, seen;
    do {
      seen = old;
      old = atomicCAS(csum, seen, seen + x);
    } while (old != seen);
  }
}

RT_GLOBAL void reverse_blocks_kernel(const float* x, float* y, int64_t n) {
  RT_DYNAMIC_SHARED(float, buf);
  const unsigned t = threadIdx.x, b = blockDim.x;
  const int64_t base = blockIdx.x * int64_t(b);
  if (base + t < n) buf[t] = x[base + t];
  __syncthreads();
  const int64_t len = n - base < b ? n - base : b;
  if (t < len) y[base + t] = buf[len - 1 - t];
}

RT_GLOBAL void index_3d_kernel(int* out) {
  const unsigned block = blockIdx.y * gridDim.x + blockIdx.x;
  const unsigned per_block = blockDim.x * blockDim.y * blockDim.z;
  const unsigned t = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  out[block * per_block + t] = int(block * per_block + t);
}

RT_GLOBAL void divergent_barrier_kernel(float* x) {
  if (threadIdx.x < 16) return;
  x[threadIdx.x] = 1.f;
  __syncthreads();
}

RT_GLOBAL void split_barriers_kernel(float* x) {
  if (threadIdx.x < 32) {
    x[threadIdx.x] = 1.f;
    __syncthreads();
  } else {
    __syncthreads();
    x[threadIdx.x] = 2.f;
  }
}

RT_GLOBAL void shuffle_outside_mask_kernel(float* x) {
  const unsigned lane = threadIdx.x % 32;
  if (lane < 16) x[lane] = __shfl_down_sync(0x0000ffffu, x[lane], 8);  // lanes 8..15 read lanes 16..23
}

RT_GLOBAL void write_one_past_kernel(float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i <= n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = 1.f;
}

RT_GLOBAL void scale_span_kernel(FloatSpan span, float a) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < span.n; i += int64_t(gridDim.x) * blockDim.x)
    span.data[i] *= a;
}

RT_GLOBAL void load_through_table_kernel(float* const* table, float* out) { out[0] = *table[0]; }

#if defined(RTUNE_CUDA_SIM)
RT_DEVICE int deep(int d) {
  volatile char pad[1024];
  pad[d % 1024] = char(d);
  return d == 0 ? 0 : deep(d - 1) + pad[d % 1024];
}
RT_GLOBAL void deep_recursion_kernel(int* out, int depth) { out[threadIdx.x] = deep(depth); }
#endif

}  // namespace

void scale_span(FloatSpan span, float a, rt::Stream s) {
  launch(scale_span_kernel, grid_for(span.n, 128), 128, 0, s, span, a);
}
void load_through_table(float* const* table, float* out, rt::Stream s) {
  launch(load_through_table_kernel, 1, 1, 0, s, table, out);
}
#if defined(RTUNE_CUDA_SIM)
void deep_recursion(int* out, int depth, rt::Stream s) { launch(deep_recursion_kernel, 1, 1, 0, s, out, depth); }
#endif
void axpy(const float* x, float* y, float a, int64_t n, rt::Stream s) {
  launch(axpy_kernel, grid_for(n, 256), 256, 0, s, x, y, a, n);
}
void block_sums(const float* x, float* out, int64_t n, bool drop_barrier, rt::Stream s) {
  launch(block_sums_kernel, dim3(unsigned((n + 255) / 256)), 256, 0, s, x, out, n, drop_barrier);
}
void warp_sum(const float* x, float* out, int64_t n, int block, rt::Stream s) {
  launch(warp_sum_kernel, grid_for(n, block), block, 0, s, x, out, n);
}
void warp_allreduce(const double* x, double* out, int64_t n, rt::Stream s) {
  launch(warp_allreduce_kernel, dim3(unsigned((n + 127) / 128)), 128, 0, s, x, out, n);
}
void warp_ballot(const float* x, unsigned* out, int64_t n, rt::Stream s) {
  launch(warp_ballot_kernel, dim3(unsigned((n + 63) / 64)), 64, 0, s, x, out, n);
}
void warp_segments(const int* x, int* idx_out, int* up_out, int64_t n, rt::Stream s) {
  launch(warp_segments_kernel, dim3(unsigned((n + 63) / 64)), 64, 0, s, x, idx_out, up_out, n);
}
void atomics(const int* v, int64_t n, int* hist, int bins, unsigned long long* total, int* maxv, float* fsum,
             int* csum, rt::Stream s) {
  launch(atomics_kernel, grid_for(n, 64), 64, 0, s, v, n, hist, bins, total, maxv, fsum, csum);
}
void reverse_blocks(const float* x, float* y, int64_t n, int block, rt::Stream s) {
  launch(reverse_blocks_kernel, dim3(unsigned((n + block - 1) / block)), block, block * sizeof(float), s, x, y, n);
}
void index_3d(int* out, int gx, int gy, int bx, int by, int bz, rt::Stream s) {
  launch(index_3d_kernel, dim3(gx, gy), dim3(bx, by, bz), 0, s, out);
}
void divergent_barrier(float* x, rt::Stream s) { launch(divergent_barrier_kernel, 1, 64, 0, s, x); }
void split_barriers(float* x, rt::Stream s) { launch(split_barriers_kernel, 1, 64, 0, s, x); }
void shuffle_outside_mask(float* x, rt::Stream s) { launch(shuffle_outside_mask_kernel, 1, 32, 0, s, x); }
void write_one_past(float* y, int64_t n, rt::Stream s) { launch(write_one_past_kernel, grid_for(n, 128), 128, 0, s, y, n); }

}  // namespace rtune::cuda::testk
