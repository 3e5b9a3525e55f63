// max_pool2d (torch.nn.MaxPool2d: floor mode, padding never wins, first maximum in row-major window
// order wins, NaN propagates) and adaptive_avg_pool2d (torch.nn.AdaptiveAvgPool2d bins) with own
// kernels, for NCHW and channels-last tensors through their strides. Own kernels rather than
// cuDNN's pooling because the façade's max-pool backward takes torch's flat indices (h·W + w per
// plane), which cuDNN neither produces nor consumes. The max-pool backward scatters with atomicAdd
// (overlapping windows add in an unspecified order: ≤ 1 ulp per overlap, as PyTorch's CUDA kernel);
// the adaptive-pool backward gathers in the CPU oracle's order.
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/handles.h"
#include "kernels/cuda/layout.h"
#include "kernels/cuda/kernel_util.cuh"

namespace rtune::cuda {

namespace {

struct Plane4 {  // sizes and strides of an N×C×H×W tensor
  int64_t N, C, H, W, sn, sc, sh, sw;
  RT_HOST_DEVICE int64_t at(int64_t n, int64_t c, int64_t h, int64_t w) const { return n * sn + c * sc + h * sh + w * sw; }
};
Plane4 plane_of(const Tensor& t) {
  return {t.size(0), t.size(1), t.size(2), t.size(3), t.strides()[0], t.strides()[1], t.strides()[2], t.strides()[3]};
}

template <class T>
RT_GLOBAL void max_pool_forward_kernel(const T* x, Plane4 xp, T* y, Plane4 yp, int64_t* idx, Pool2dArgs a, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t ow = i % yp.W, oh = (i / yp.W) % yp.H, c = (i / (yp.W * yp.H)) % yp.C, n = i / (yp.W * yp.H * yp.C);
    int64_t h0 = oh * a.stride_h - a.pad_h, w0 = ow * a.stride_w - a.pad_w;
    int64_t hs = h0 > 0 ? h0 : 0, ws = w0 > 0 ? w0 : 0;
    int64_t he = h0 + a.kernel_h < xp.H ? h0 + a.kernel_h : xp.H, we = w0 + a.kernel_w < xp.W ? w0 + a.kernel_w : xp.W;
    using C = compute_t<T>;
    C best = -C(INFINITY);
    int64_t arg = hs * xp.W + ws;
    bool done = false;
    for (int64_t h = hs; h < he && !done; ++h)
      for (int64_t w = ws; w < we; ++w) {
        C v = load(x[xp.at(n, c, h, w)]);
        if (v > best || v != v) {
          best = v;
          arg = h * xp.W + w;
          if (v != v) {
            done = true;
            break;
          }
        }
      }
    y[yp.at(n, c, oh, ow)] = store<T>(best);
    idx[i] = arg;  // indices are NCHW-contiguous, i is the NCHW linear index
  }
}

template <class T>
RT_GLOBAL void zero_kernel(T* p, Plane4 pp, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t w = i % pp.W, h = (i / pp.W) % pp.H, c = (i / (pp.W * pp.H)) % pp.C, n = i / (pp.W * pp.H * pp.C);
    p[pp.at(n, c, h, w)] = T(0);
  }
}

template <class T>
RT_GLOBAL void max_pool_backward_kernel(const T* gy, Plane4 gyp, const int64_t* idx, T* gx, Plane4 gxp, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t ow = i % gyp.W, oh = (i / gyp.W) % gyp.H, c = (i / (gyp.W * gyp.H)) % gyp.C, n = i / (gyp.W * gyp.H * gyp.C);
    int64_t k = idx[i];
    atomicAdd(&gx[gxp.at(n, c, k / gxp.W, k % gxp.W)], gy[gyp.at(n, c, oh, ow)]);
  }
}

RT_HOST_DEVICE inline int64_t bin_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
RT_HOST_DEVICE inline int64_t bin_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }

template <class T>
RT_GLOBAL void adaptive_avg_forward_kernel(const T* x, Plane4 xp, T* y, Plane4 yp, int64_t total) {
  using C = compute_t<T>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t ow = i % yp.W, oh = (i / yp.W) % yp.H, c = (i / (yp.W * yp.H)) % yp.C, n = i / (yp.W * yp.H * yp.C);
    int64_t h0 = bin_start(oh, xp.H, yp.H), h1 = bin_end(oh, xp.H, yp.H);
    int64_t w0 = bin_start(ow, xp.W, yp.W), w1 = bin_end(ow, xp.W, yp.W);
    C acc = 0;
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) acc += load(x[xp.at(n, c, h, w)]);
    y[yp.at(n, c, oh, ow)] = store<T>(acc / C((h1 - h0) * (w1 - w0)));
  }
}

template <class T>
RT_GLOBAL void adaptive_avg_backward_kernel(const T* gy, Plane4 gyp, T* gx, Plane4 gxp, int64_t total) {
  using C = compute_t<T>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t w = i % gxp.W, h = (i / gxp.W) % gxp.H, c = (i / (gxp.W * gxp.H)) % gxp.C, n = i / (gxp.W * gxp.H * gxp.C);
    C acc = 0;
    for (int64_t oh = 0; oh < gyp.H; ++oh) {
      int64_t h0 = bin_start(oh, gxp.H, gyp.H), h1 = bin_end(oh, gxp.H, gyp.H);
      if (h < h0 || h >= h1) continue;
      for (int64_t ow = 0; ow < gyp.W; ++ow) {
        int64_t w0 = bin_start(ow, gxp.W, gyp.W), w1 = bin_end(ow, gxp.W, gyp.W);
        if (w < w0 || w >= w1) continue;
        acc += load(gy[gyp.at(n, c, oh, ow)]) / C((h1 - h0) * (w1 - w0));
      }
    }
    gx[gxp.at(n, c, h, w)] = store<T>(acc);
  }
}

// Output must be writable through its strides: dense in a layout (else a temporary is used).
void check4(const char* op, const Tensor& t) { RTUNE_CHECK(t.dim() == 4, "{}: expected a 4-d tensor, got {}", op, t.str()); }

}  // namespace

void max_pool2d_forward(const Tensor& x0, const Pool2dArgs& a, Tensor& y0, Tensor& indices) {
  const char* op = "max_pool2d_forward";
  check4(op, x0);
  require_dtype(op, indices, DType::i64);
  RTUNE_CHECK(indices.is_contiguous(), "{}: indices must be contiguous", op);
  Tensor x = is_dense(x0) ? x0 : x0.contiguous();
  dense_out(y0, [&](Tensor& y) {
    int64_t total = y.numel();
    if (total == 0) return;
    dispatch_floating(op, x, [&](auto tag) {
      using T = decltype(tag);
      launch(max_pool_forward_kernel<T>, grid_for(total, kThreads), kThreads, 0, stream(), dptr<const T>(x),
             plane_of(x), dptr<T>(y), plane_of(y), dptr<int64_t>(indices), a, total);
    });
  });
}

void max_pool2d_backward(const Tensor& gy0, const Tensor& indices0, Tensor& gx0) {
  const char* op = "max_pool2d_backward";
  check4(op, gy0);
  check4(op, gx0);
  require_dtype(op, indices0, DType::i64);
  Tensor gy = is_dense(gy0) ? gy0 : gy0.contiguous(), indices = indices0.contiguous();
  if (gy.dtype() == DType::bf16 || gy.dtype() == DType::f16) {
    // Overlapping windows add into one input element: atomicAdd, which 16-bit floats lack here, so
    // accumulate in an fp32 scratch gradient and round once (as autocast's fp32 accumulation would).
    require_same_dtype(op, gy, gx0);
    Tensor gy32 = empty(gy.shape(), {DType::f32, gy.device(), gy.suggest_memory_format()});
    copy(gy, gy32);
    Tensor gx32 = empty(gx0.shape(), {DType::f32, gx0.device(), gx0.suggest_memory_format()});
    max_pool2d_backward(gy32, indices, gx32);
    copy(gx32, gx0);
    return;
  }
  dense_out(gx0, [&](Tensor& gx) {
    dispatch_f32_f64(op, gy, [&](auto tag) {  // atomicAdd: float and double
      using T = decltype(tag);
      int64_t nx = gx.numel(), ny = gy.numel();
      if (nx == 0) return;
      launch(zero_kernel<T>, grid_for(nx, kThreads), kThreads, 0, stream(), dptr<T>(gx), plane_of(gx), nx);
      if (ny == 0) return;
      launch(max_pool_backward_kernel<T>, grid_for(ny, kThreads), kThreads, 0, stream(), dptr<const T>(gy),
             plane_of(gy), dptr<const int64_t>(indices), dptr<T>(gx), plane_of(gx), ny);
    });
  });
}

void adaptive_avg_pool2d_forward(const Tensor& x0, Tensor& y0) {
  const char* op = "adaptive_avg_pool2d_forward";
  check4(op, x0);
  Tensor x = is_dense(x0) ? x0 : x0.contiguous();
  dense_out(y0, [&](Tensor& y) {
    int64_t total = y.numel();
    if (total == 0) return;
    dispatch_floating(op, x, [&](auto tag) {
      using T = decltype(tag);
      launch(adaptive_avg_forward_kernel<T>, grid_for(total, kThreads), kThreads, 0, stream(), dptr<const T>(x),
             plane_of(x), dptr<T>(y), plane_of(y), total);
    });
  });
}

void adaptive_avg_pool2d_backward(const Tensor& gy0, Tensor& gx0) {
  const char* op = "adaptive_avg_pool2d_backward";
  check4(op, gy0);
  check4(op, gx0);
  Tensor gy = is_dense(gy0) ? gy0 : gy0.contiguous();
  dense_out(gx0, [&](Tensor& gx) {
    int64_t total = gx.numel();
    if (total == 0) return;
    dispatch_floating(op, gy, [&](auto tag) {
      using T = decltype(tag);
      launch(adaptive_avg_backward_kernel<T>, grid_for(total, kThreads), kThreads, 0, stream(), dptr<const T>(gy),
             plane_of(gy), dptr<T>(gx), plane_of(gx), total);
    });
  });
}

}  // namespace rtune::cuda
