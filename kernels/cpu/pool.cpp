// CPU max_pool2d (torch.nn.MaxPool2d, floor mode, padding as -inf, first maximum wins, NaN propagates)
// and adaptive_avg_pool2d (torch.nn.AdaptiveAvgPool2d bins), NCHW, planes in parallel; channels-last
// tensors (CPU training and inference on oneDNN) in their own layout, pixels in parallel, each a pass
// over the contiguous channels, every channel's terms in the NCHW kernels' order (the same values).
#include <cmath>
#include <limits>
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"

namespace rtune::cpu {

namespace {
// Channels-last input and output (CPU inference in channels-last): per output pixel, the window's taps in
// row-major order, each a pass over the C contiguous channels (vectorised), with the NCHW kernel's rules
// (strict >, so the first maximum wins; a held NaN stays). Indices are written in their NCHW layout, as
// plane offsets h * W + w, so the backward reads them alike.
template <class T>
void max_pool2d_channels_last(const Tensor& x, const Pool2dArgs& a, Tensor& y, Tensor& indices) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), Ho = y.size(2), Wo = y.size(3);
  const T* px = x.data<T>();
  T* py = y.data<T>();
  int64_t* pi = indices.data<int64_t>();
#pragma omp parallel
  {
    int64_t* __restrict arg = thread_scratch<int64_t>(size_t(C));
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          T* __restrict best = py + ((n * Ho + oh) * Wo + ow) * C;
          const int64_t h0 = oh * a.stride_h - a.pad_h, w0 = ow * a.stride_w - a.pad_w;
          const int64_t first = std::max<int64_t>(h0, 0) * W + std::max<int64_t>(w0, 0);
          for (int64_t c = 0; c < C; ++c) best[c] = -std::numeric_limits<T>::infinity(), arg[c] = first;
          for (int64_t h = std::max<int64_t>(h0, 0); h < std::min(h0 + a.kernel_h, H); ++h)
            for (int64_t w = std::max<int64_t>(w0, 0); w < std::min(w0 + a.kernel_w, W); ++w) {
              const T* __restrict v = px + ((n * H + h) * W + w) * C;
              const int64_t pos = h * W + w;
              for (int64_t c = 0; c < C; ++c) {
                const bool take = ((v[c] > best[c]) | (v[c] != v[c])) & (best[c] == best[c]);
                best[c] = take ? v[c] : best[c];
                arg[c] = take ? pos : arg[c];
              }
            }
          for (int64_t c = 0; c < C; ++c) pi[((n * C + c) * Ho + oh) * Wo + ow] = arg[c];
        }
  }
}

// Channels-last gradient: per image, the output pixels in order, each adding its C gradients at their
// argmax (the NCHW kernel's order per plane). Indices are NCHW plane offsets (max_pool2d_channels_last).
template <class T> void max_pool2d_backward_channels_last(const Tensor& gy, const Tensor& indices, Tensor& gx) {
  const int64_t N = gx.size(0), C = gx.size(1), HW = gx.size(2) * gx.size(3), P = gy.size(2) * gy.size(3);
  const T* pg = gy.data<T>();
  const int64_t* pi = indices.data<int64_t>();
  T* out = gx.data<T>();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    T* o = out + n * HW * C;
    std::fill(o, o + HW * C, T(0));
    const int64_t* idx = pi + n * C * P;
    for (int64_t i = 0; i < P; ++i) {
      const T* g = pg + (n * P + i) * C;
      for (int64_t c = 0; c < C; ++c) o[idx[c * P + i] * C + c] += g[c];
    }
  }
}
}  // namespace

void max_pool2d_forward(const Tensor& x0, const Pool2dArgs& a, Tensor& y, Tensor& indices) {
  if (strictly_channels_last(x0) && strictly_channels_last(y)) {
    require_dtype("max_pool2d_forward", indices, DType::i64);
    RTUNE_CHECK(indices.is_contiguous(), "max_pool2d_forward: indices must be contiguous");
    dispatch_float("max_pool2d_forward", x0, [&](auto tag) { max_pool2d_channels_last<decltype(tag)>(x0, a, y, indices); });
    return;
  }
  Tensor x = x0.contiguous();
  int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3), Ho = y.size(2), Wo = y.size(3);
  require_dtype("max_pool2d_forward", indices, DType::i64);
  RTUNE_CHECK(indices.is_contiguous(), "max_pool2d_forward: indices must be contiguous");
  with_contiguous_output(y, [&](Tensor& yd) {
    dispatch_float("max_pool2d_forward", x, [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      T* py = yd.data<T>();
      int64_t* pi = indices.data<int64_t>();
      const int64_t kh = a.kernel_h, kwidth = a.kernel_w, sh = a.stride_h, sw = a.stride_w, ph = a.pad_h, pw = a.pad_w;
      // Tap-major: for each window row and column offset, one branch-free pass along the output row (the
      // window's taps in row-major order, so with a strict > the first maximum wins; once a NaN is held
      // it stays: the first NaN wins). Out-of-range taps (padding) are skipped by the column bounds.
#pragma omp parallel for schedule(static)
      for (int64_t pl = 0; pl < planes; ++pl) {
        const T* in = px + pl * H * W;
        for (int64_t oh = 0; oh < Ho; ++oh) {
          T* __restrict yrow = py + (pl * Ho + oh) * Wo;
          int64_t* __restrict irow = pi + (pl * Ho + oh) * Wo;
          const int64_t h0 = oh * sh - ph;
          for (int64_t ow = 0; ow < Wo; ++ow) {
            yrow[ow] = -std::numeric_limits<T>::infinity();
            irow[ow] = std::max<int64_t>(h0, 0) * W + std::max<int64_t>(ow * sw - pw, 0);
          }
          for (int64_t h = std::max<int64_t>(h0, 0); h < std::min(h0 + kh, H); ++h) {
            const T* __restrict row = in + h * W;
            for (int64_t kw = 0; kw < kwidth; ++kw) {
              // ow such that 0 <= ow * stride + kw - pad < W.
              const int64_t off = kw - pw;
              const int64_t lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
              const int64_t hi = std::min(Wo, W - 1 - off < 0 ? 0 : (W - 1 - off) / sw + 1);
              const int64_t base = h * W + off;
              for (int64_t ow = lo; ow < hi; ++ow) {
                const T v = row[ow * sw + off], b = yrow[ow];
                const bool take = ((v > b) | (v != v)) & (b == b);  // bitwise: no branch
                yrow[ow] = take ? v : b;
                irow[ow] = take ? base + ow * sw : irow[ow];
              }
            }
          }
        }
      }
    });
  });
}

void max_pool2d_backward(const Tensor& gy0, const Tensor& indices, Tensor& gx) {
  if (strictly_channels_last(gx)) {
    const Tensor gy = as_channels_last(gy0);
    dispatch_float("max_pool2d_backward", gy, [&](auto tag) { max_pool2d_backward_channels_last<decltype(tag)>(gy, indices, gx); });
    return;
  }
  Tensor gy = gy0.contiguous();
  int64_t planes = gx.size(0) * gx.size(1), HW = gx.size(2) * gx.size(3), P = gy.size(2) * gy.size(3);
  with_contiguous_output(gx, [&](Tensor& gxd) {
    dispatch_float("max_pool2d_backward", gy, [&](auto tag) {
      using T = decltype(tag);
      const T* pg = gy.data<T>();
      const int64_t* pi = indices.data<int64_t>();
      T* out = gxd.data<T>();
#pragma omp parallel for schedule(static)
      for (int64_t pl = 0; pl < planes; ++pl) {
        T* o = out + pl * HW;
        std::fill(o, o + HW, T(0));
        for (int64_t i = 0; i < P; ++i) o[pi[pl * P + i]] += pg[pl * P + i];
      }
    });
  });
}

namespace {
int64_t bin_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
int64_t bin_end(int64_t i, int64_t in, int64_t out) { return ((i + 1) * in + out - 1) / out; }
}  // namespace

void adaptive_avg_pool2d_forward(const Tensor& x0, Tensor& y) {
  if (strictly_channels_last(x0)) {
    // y is NCHW ([N, C, 1, 1] in a ResNet, where both layouts are one); each bin summed per channel in
    // the NCHW kernel's order (rows, then columns), C channels at a time.
    const int64_t N = x0.size(0), C = x0.size(1), H = x0.size(2), W = x0.size(3), Ho = y.size(2), Wo = y.size(3);
    with_contiguous_output(y, [&](Tensor& yd) {
      dispatch_float("adaptive_avg_pool2d_forward", x0, [&](auto tag) {
        using T = decltype(tag);
        const T* px = x0.data<T>();
        T* py = yd.data<T>();
#pragma omp parallel
        {
          T* __restrict a = thread_scratch<T>(size_t(C));
#pragma omp for collapse(3) schedule(static)
          for (int64_t n = 0; n < N; ++n)
            for (int64_t oh = 0; oh < Ho; ++oh)
              for (int64_t ow = 0; ow < Wo; ++ow) {
                const int64_t h0 = bin_start(oh, H, Ho), h1 = bin_end(oh, H, Ho);
                const int64_t w0 = bin_start(ow, W, Wo), w1 = bin_end(ow, W, Wo);
                std::fill(a, a + C, T(0));
                for (int64_t h = h0; h < h1; ++h)
                  for (int64_t w = w0; w < w1; ++w) {
                    const T* v = px + ((n * H + h) * W + w) * C;
                    for (int64_t c = 0; c < C; ++c) a[c] += v[c];
                  }
                const T count = T((h1 - h0) * (w1 - w0));
                for (int64_t c = 0; c < C; ++c) py[((n * C + c) * Ho + oh) * Wo + ow] = a[c] / count;
              }
        }
      });
    });
    return;
  }
  Tensor x = x0.contiguous();
  int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3), Ho = y.size(2), Wo = y.size(3);
  with_contiguous_output(y, [&](Tensor& yd) {
    dispatch_float("adaptive_avg_pool2d_forward", x, [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      T* py = yd.data<T>();
#pragma omp parallel for schedule(static)
      for (int64_t pl = 0; pl < planes; ++pl)
        for (int64_t oh = 0; oh < Ho; ++oh)
          for (int64_t ow = 0; ow < Wo; ++ow) {
            int64_t h0 = bin_start(oh, H, Ho), h1 = bin_end(oh, H, Ho);
            int64_t w0 = bin_start(ow, W, Wo), w1 = bin_end(ow, W, Wo);
            T acc = 0;
            for (int64_t h = h0; h < h1; ++h)
              for (int64_t w = w0; w < w1; ++w) acc += px[(pl * H + h) * W + w];
            py[(pl * Ho + oh) * Wo + ow] = acc / T((h1 - h0) * (w1 - w0));
          }
    });
  });
}

void adaptive_avg_pool2d_backward(const Tensor& gy0, Tensor& gx) {
  if (strictly_channels_last(gx)) {
    // gx channels-last: per image, the bins in the NCHW kernel's order, each adding g / count to its pixels.
    const Tensor gy = gy0.contiguous();
    const int64_t N = gx.size(0), C = gx.size(1), H = gx.size(2), W = gx.size(3), Ho = gy.size(2), Wo = gy.size(3);
    dispatch_float("adaptive_avg_pool2d_backward", gy, [&](auto tag) {
      using T = decltype(tag);
      const T* pg = gy.data<T>();
      T* out = gx.data<T>();
#pragma omp parallel
      {
        T* __restrict g = thread_scratch<T>(size_t(C));
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; ++n) {
          T* o = out + n * H * W * C;
          std::fill(o, o + H * W * C, T(0));
          for (int64_t oh = 0; oh < Ho; ++oh)
            for (int64_t ow = 0; ow < Wo; ++ow) {
              const int64_t h0 = bin_start(oh, H, Ho), h1 = bin_end(oh, H, Ho);
              const int64_t w0 = bin_start(ow, W, Wo), w1 = bin_end(ow, W, Wo);
              const T count = T((h1 - h0) * (w1 - w0));
              for (int64_t c = 0; c < C; ++c) g[c] = pg[((n * C + c) * Ho + oh) * Wo + ow] / count;
              for (int64_t h = h0; h < h1; ++h)
                for (int64_t w = w0; w < w1; ++w) {
                  T* q = o + (h * W + w) * C;
                  for (int64_t c = 0; c < C; ++c) q[c] += g[c];
                }
            }
        }
      }
    });
    return;
  }
  Tensor gy = gy0.contiguous();
  int64_t planes = gx.size(0) * gx.size(1), H = gx.size(2), W = gx.size(3), Ho = gy.size(2), Wo = gy.size(3);
  with_contiguous_output(gx, [&](Tensor& gxd) {
    dispatch_float("adaptive_avg_pool2d_backward", gy, [&](auto tag) {
      using T = decltype(tag);
      const T* pg = gy.data<T>();
      T* out = gxd.data<T>();
#pragma omp parallel for schedule(static)
      for (int64_t pl = 0; pl < planes; ++pl) {
        T* o = out + pl * H * W;
        std::fill(o, o + H * W, T(0));
        for (int64_t oh = 0; oh < Ho; ++oh)
          for (int64_t ow = 0; ow < Wo; ++ow) {
            int64_t h0 = bin_start(oh, H, Ho), h1 = bin_end(oh, H, Ho);
            int64_t w0 = bin_start(ow, W, Wo), w1 = bin_end(ow, W, Wo);
            T g = pg[(pl * Ho + oh) * Wo + ow] / T((h1 - h0) * (w1 - w0));
            for (int64_t h = h0; h < h1; ++h)
              for (int64_t w = w0; w < w1; ++w) o[h * W + w] += g;
          }
      }
    });
  });
}

}  // namespace rtune::cpu
