// Synchronised batch norm's per-rank pieces (torch.nn.SyncBatchNorm; engine/functional.cpp
// sync_batch_norm sums the ranks' results between them): the CPU oracle's semantics
// (kernels/cpu/batch_norm.cpp) in float32/float64 on any strides (channels_last included). The two
// sums are one block per channel with a block reduction in double: a fixed tree, no atomics, so
// the result is the same run to run. normalize and the input gradient are per element in double,
// rounded once. Everything is queued on the backend stream; nothing waits for the device.
#include <algorithm>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/handles.h"
#include "kernels/cuda/layout.h"
#include "kernels/cuda/kernel_util.cuh"

namespace rtune::cuda {

namespace {

// Dims of an N×C×… input: the per-channel sums run over M = N·HW values.
struct Dims {
  int64_t C, HW, M;
};
Dims dims_of(const Tensor& x) {
  int64_t hw = 1;
  for (int64_t d = 2; d < x.dim(); ++d) hw *= x.size(d);
  return {x.size(1), hw, x.size(0) * hw};
}

// Row-major index of the j-th value (n = j / HW, position j % HW) of channel c.
RT_HOST_DEVICE inline int64_t channel_elem(int64_t j, int64_t c, int64_t C, int64_t HW) {
  const int64_t n = j / HW;
  return (n * C + c) * HW + (j - n * HW);
}

// Blocks for one-block-per-channel kernels (they loop over channels beyond the grid).
dim3 channel_grid(int64_t C) { return dim3(unsigned(std::min<int64_t>(C, 65535))); }

// sums[c] = Σx, sums[C + c] = Σx² over channel c.
template <class T>
RT_GLOBAL void channel_sums_kernel(const T* x, Indexer xi, double* sums, int64_t C, int64_t HW, int64_t M) {
  __shared__ double smem[kThreads];
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    double s = 0, sq = 0;
    for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
      const double v = double(x[xi.offset(channel_elem(j, c, C, HW))]);
      s += v;
      sq += v * v;
    }
    const double ts = block_sum(s, smem), tq = block_sum(sq, smem);
    if (threadIdx.x == 0) sums[c] = ts, sums[C + c] = tq;
  }
}

// sums[c] = Σgy, sums[C + c] = Σgy·(x − mean)·invstd over channel c (invstd applied once, as the CPU).
template <class T>
RT_GLOBAL void backward_sums_kernel(const T* gy, Indexer gi, const T* x, Indexer xi, const T* mean, const T* invstd,
                                    double* sums, int64_t C, int64_t HW, int64_t M) {
  __shared__ double smem[kThreads];
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    const double m = double(mean[c]);
    double sg = 0, sgx = 0;
    for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
      const int64_t e = channel_elem(j, c, C, HW);
      const double g = double(gy[gi.offset(e)]);
      sg += g;
      sgx += g * (double(x[xi.offset(e)]) - m);
    }
    const double tg = block_sum(sg, smem), tgx = block_sum(sgx, smem);
    if (threadIdx.x == 0) sums[c] = tg, sums[C + c] = tgx * double(invstd[c]);
  }
}

// y = x·scale + shift with scale = w·invstd, shift = b − mean·scale (stats: mean, then invstd).
template <class T>
RT_GLOBAL void normalize_kernel(const T* x, Indexer xi, const T* w, const T* b, const double* stats, T* y, Indexer yi,
                                int64_t C, int64_t HW, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = (i / HW) % C;
    const double scale = (w ? double(w[c]) : 1.0) * stats[C + c], shift = (b ? double(b[c]) : 0.0) - stats[c] * scale;
    y[yi.offset(i)] = T(double(x[xi.offset(i)]) * scale + shift);
  }
}

// gx = w·invstd·(gy − Σgy/count − (x − mean)·invstd·Σ(gy·x̂)/count).
template <class T>
RT_GLOBAL void input_grad_kernel(const T* gy, Indexer gi, const T* x, Indexer xi, const T* w, const T* mean,
                                 const T* invstd, const double* sums, double count, T* gx, Indexer oi, int64_t C,
                                 int64_t HW, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = (i / HW) % C;
    const double m = double(mean[c]), is = double(invstd[c]), k = (w ? double(w[c]) : 1.0) * is;
    const double mean_g = sums[c] / count, proj = sums[C + c] / count;
    gx[oi.offset(i)] = T(k * (double(gy[gi.offset(i)]) - mean_g - (double(x[xi.offset(i)]) - m) * is * proj));
  }
}

template <class T> const T* ptr_or_null(const Tensor& t) { return t.defined() ? dptr<const T>(t) : nullptr; }

}  // namespace

void batch_norm_channel_sums(const Tensor& x, Tensor& sums) {
  const Dims d = dims_of(x);
  dispatch_f32_f64("batch_norm_channel_sums", x, [&](auto tag) {
    using T = decltype(tag);
    launch(channel_sums_kernel<T>, channel_grid(d.C), kThreads, 0, stream(), dptr<const T>(x), indexer_of(x),
           dptr<double>(sums), d.C, d.HW, d.M);
  });
}

void batch_norm_normalize(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& stats, Tensor& y) {
  const Dims d = dims_of(x);
  dense_out(y, [&](Tensor& yd) {
    dispatch_f32_f64("batch_norm_normalize", x, [&](auto tag) {
      using T = decltype(tag);
      launch(normalize_kernel<T>, grid_for(x.numel(), kThreads), kThreads, 0, stream(), dptr<const T>(x),
             indexer_of(x), ptr_or_null<T>(weight), ptr_or_null<T>(bias), dptr<const double>(stats), dptr<T>(yd),
             indexer_of(yd), d.C, d.HW, x.numel());
    });
  });
}

void batch_norm_backward_sums(const Tensor& gy, const Tensor& x, const Tensor& mean, const Tensor& invstd, Tensor& sums) {
  const Dims d = dims_of(x);
  dispatch_f32_f64("batch_norm_backward_sums", x, [&](auto tag) {
    using T = decltype(tag);
    launch(backward_sums_kernel<T>, channel_grid(d.C), kThreads, 0, stream(), dptr<const T>(gy), indexer_of(gy),
           dptr<const T>(x), indexer_of(x), dptr<const T>(mean), dptr<const T>(invstd), dptr<double>(sums), d.C, d.HW,
           d.M);
  });
}

void batch_norm_backward_input_from_sums(const Tensor& gy, const Tensor& x, const Tensor& weight, const Tensor& mean,
                                         const Tensor& invstd, const Tensor& grad_sums, double count, Tensor& gx) {
  const Dims d = dims_of(x);
  dense_out(gx, [&](Tensor& gd) {
    dispatch_f32_f64("batch_norm_backward_input_from_sums", x, [&](auto tag) {
      using T = decltype(tag);
      launch(input_grad_kernel<T>, grid_for(x.numel(), kThreads), kThreads, 0, stream(), dptr<const T>(gy),
             indexer_of(gy), dptr<const T>(x), indexer_of(x), ptr_or_null<T>(weight), dptr<const T>(mean),
             dptr<const T>(invstd), dptr<const double>(grad_sums), count, dptr<T>(gd), indexer_of(gd), d.C, d.HW,
             x.numel());
    });
  });
}

}  // namespace rtune::cuda
