// CPU conv2d (torch.nn.functional.conv2d, groups=1): im2col + Eigen GEMM per image, NCHW.
// Images are spread over OpenMP threads when the batch is large enough, otherwise each GEMM is
// parallelised by Eigen. 1×1 stride-1 unpadded convolutions skip im2col entirely.
// float32 goes to oneDNN instead when kernels/cpu/backend.h says so (float64 never does: the oracle).
#include <Eigen/Core>
#include <omp.h>
#include "kernels/cpu/backend.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"
#if defined(RTUNE_HAVE_ONEDNN)
#include "kernels/cpu/onednn/conv2d_onednn.h"
// bf16 products (Conv2dArgs) go to oneDNN only where it has bf16 kernels for this CPU.
#define RTUNE_ONEDNN_OR_EIGEN(dtype, a, call) \
  do { if (use_onednn(dtype) && (!(a).bf16_products || onednn_bf16_kernels())) return onednn::call; } while (0)
#else
#define RTUNE_ONEDNN_OR_EIGEN(dtype, a, call) do { } while (0)
#endif

namespace rtune::cpu {

namespace {

template <class T> using MatR = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using MapR = Eigen::Map<MatR<T>>;
template <class T> using CMapR = Eigen::Map<const MatR<T>>;

struct Geometry {
  int64_t N, C, H, W, K, R, S, Ho, Wo;
  Conv2dArgs a;
  int64_t crs() const { return C * R * S; }
  int64_t p() const { return Ho * Wo; }
  bool pointwise() const {
    return R == 1 && S == 1 && a.stride_h == 1 && a.stride_w == 1 && a.pad_h == 0 && a.pad_w == 0;
  }
};

// bf16 products on Eigen, or on oneDNN where it has no bf16 kernels for this CPU: the inputs rounded to
// bf16 (to nearest even, as oneDNN's reorder rounds), then the float32 computation of the backend in force.
// A product of two bf16 values is exact in float32, so this differs from oneDNN's bf16 kernels only in
// the order of the float32 sums (the oracle of tests/ops/test_conv2d.cpp's bf16 cases).
Tensor bf16_rounded(const Tensor& t) { return t.to(DType::bf16).to(DType::f32); }
Conv2dArgs fp32_products(Conv2dArgs a) {
  a.bf16_products = false;
  return a;
}

Geometry geometry(const Shape& x, const Shape& w, const Conv2dArgs& a) {
  Shape y = kernels::conv2d_out_shape(x, w, a);
  return {x[0], x[1], x[2], x[3], w[0], w[2], w[3], y[2], y[3], a};
}

// Output pixels are processed in tiles of columns so an im2col tile stays in L2 cache.
int64_t tile_cols(const Geometry& g) {
  int64_t t = (int64_t(1) << 17) / std::max<int64_t>(g.crs(), 1);  // ~512 KiB of float columns
  t = std::max<int64_t>(64, t / 16 * 16);
  return std::min(t, g.p());
}

// col[(c*R + r)*S + s][j] = x[c][oh*sh - ph + r*dh][ow*sw - pw + s*dw] (0 outside), for the output
// pixels p0 + j = oh*Wo + ow, j < pt. Rows have stride pt.
template <class T> void im2col(const T* x, const Geometry& g, int64_t p0, int64_t pt, T* col) {
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t r = 0; r < g.R; ++r)
      for (int64_t s = 0; s < g.S; ++s) {
        T* out = col + ((c * g.R + r) * g.S + s) * pt;
        const T* plane = x + c * g.H * g.W;
        int64_t oh = p0 / g.Wo, ow = p0 % g.Wo;
        for (int64_t j = 0; j < pt;) {
          int64_t ih = oh * g.a.stride_h - g.a.pad_h + r * g.a.dilation_h;
          int64_t run = std::min(g.Wo - ow, pt - j);
          if (ih < 0 || ih >= g.H) {
            std::fill(out + j, out + j + run, T(0));
          } else {
            const T* in = plane + ih * g.W;
            int64_t iw = ow * g.a.stride_w - g.a.pad_w + s * g.a.dilation_w;
            for (int64_t k = 0; k < run; ++k, iw += g.a.stride_w) out[j + k] = (iw >= 0 && iw < g.W) ? in[iw] : T(0);
          }
          j += run;
          ow = 0;
          ++oh;
        }
      }
}

// The adjoint of im2col for one tile: gx += scattered col.
template <class T> void col2im(const T* col, const Geometry& g, int64_t p0, int64_t pt, T* gx) {
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t r = 0; r < g.R; ++r)
      for (int64_t s = 0; s < g.S; ++s) {
        const T* in = col + ((c * g.R + r) * g.S + s) * pt;
        T* plane = gx + c * g.H * g.W;
        int64_t oh = p0 / g.Wo, ow = p0 % g.Wo;
        for (int64_t j = 0; j < pt;) {
          int64_t ih = oh * g.a.stride_h - g.a.pad_h + r * g.a.dilation_h;
          int64_t run = std::min(g.Wo - ow, pt - j);
          if (ih >= 0 && ih < g.H) {
            T* out = plane + ih * g.W;
            int64_t iw = ow * g.a.stride_w - g.a.pad_w + s * g.a.dilation_w;
            for (int64_t k = 0; k < run; ++k, iw += g.a.stride_w)
              if (iw >= 0 && iw < g.W) out[iw] += in[j + k];
          }
          j += run;
          ow = 0;
          ++oh;
        }
      }
}

template <class T> using StridedMap = Eigen::Map<MatR<T>, 0, Eigen::OuterStride<>>;
template <class T> using CStridedMap = Eigen::Map<const MatR<T>, 0, Eigen::OuterStride<>>;

// Runs body(n, scratch) for every image: threads over images when there are enough of them.
template <class T, class F> void for_each_image(int64_t N, int64_t scratch_elems, F&& body) {
  int threads = omp_get_max_threads();
  if (N >= threads && threads > 1) {
#pragma omp parallel
    {
      std::vector<T> scratch(static_cast<size_t>(scratch_elems), T(0));
#pragma omp for schedule(static)
      for (int64_t n = 0; n < N; ++n) body(n, scratch.data(), omp_get_thread_num());
    }
  } else {
    std::vector<T> scratch(static_cast<size_t>(scratch_elems), T(0));
    for (int64_t n = 0; n < N; ++n) body(n, scratch.data(), 0);
  }
}

}  // namespace

bool conv2d_forward_fused(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& residual, bool relu,
                          const Conv2dArgs& a, Tensor& y) {
  RTUNE_ONEDNN_OR_EIGEN(x.dtype(), a, conv2d_forward_fused(x, w, bias, residual, relu, a, y));
  return false;  // Eigen has no epilogue: the façade runs it apart
}

void conv2d_forward(const Tensor& x0, const Tensor& w0, const Tensor& bias, const Conv2dArgs& a, Tensor& y) {
  RTUNE_ONEDNN_OR_EIGEN(x0.dtype(), a, conv2d_forward(x0, w0, bias, a, y));
  if (a.bf16_products) return cpu::conv2d_forward(bf16_rounded(x0), bf16_rounded(w0), bias, fp32_products(a), y);
  Tensor x = x0.contiguous(), w = w0.contiguous();
  Geometry g = geometry(x.shape(), w.shape(), a);
  with_contiguous_output(y, [&](Tensor& yd) {
    dispatch_float("conv2d_forward", x, [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      Tensor bias_c = bias.defined() ? bias.contiguous() : Tensor();
      const T* pb = bias_c.defined() ? bias_c.data<T>() : nullptr;
      T* py = yd.data<T>();
      CMapR<T> W(w.data<T>(), g.K, g.crs());
      int64_t tile = tile_cols(g);
      for_each_image<T>(g.N, g.pointwise() ? 0 : g.crs() * tile, [&](int64_t n, T* col, int) {
        const T* xn = px + n * g.C * g.H * g.W;
        MapR<T> Y(py + n * g.K * g.p(), g.K, g.p());
        if (g.pointwise()) {
          Y.noalias() = W * CMapR<T>(xn, g.crs(), g.p());
        } else {
          for (int64_t p0 = 0; p0 < g.p(); p0 += tile) {
            int64_t pt = std::min(tile, g.p() - p0);
            im2col(xn, g, p0, pt, col);
            StridedMap<T>(Y.data() + p0, g.K, pt, Eigen::OuterStride<>(g.p())).noalias() =
                W * CMapR<T>(col, g.crs(), pt);
          }
        }
        if (pb) Y.colwise() += Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(pb, g.K);
      });
    });
  });
}

void conv2d_backward_input(const Tensor& gy0, const Tensor& w0, const Conv2dArgs& a, Tensor& gx) {
  RTUNE_ONEDNN_OR_EIGEN(gy0.dtype(), a, conv2d_backward_input(gy0, w0, a, gx));
  if (a.bf16_products) return cpu::conv2d_backward_input(bf16_rounded(gy0), bf16_rounded(w0), fp32_products(a), gx);
  Tensor gy = gy0.contiguous(), w = w0.contiguous();
  Geometry g = geometry(gx.shape(), w.shape(), a);
  RTUNE_CHECK(gy.shape() == Shape({g.N, g.K, g.Ho, g.Wo}), "conv2d_backward_input: grad {} does not match output {}",
              gy.str(), shape_str({g.N, g.K, g.Ho, g.Wo}));
  with_contiguous_output(gx, [&](Tensor& gxd) {
    dispatch_float("conv2d_backward_input", gy, [&](auto tag) {
      using T = decltype(tag);
      const T* pgy = gy.data<T>();
      T* pgx = gxd.data<T>();
      CMapR<T> W(w.data<T>(), g.K, g.crs());
      int64_t tile = tile_cols(g);
      for_each_image<T>(g.N, g.pointwise() ? 0 : g.crs() * tile, [&](int64_t n, T* col, int) {
        const T* gyn = pgy + n * g.K * g.p();
        T* gxn = pgx + n * g.C * g.H * g.W;
        if (g.pointwise()) {
          MapR<T>(gxn, g.C, g.p()).noalias() = W.transpose() * CMapR<T>(gyn, g.K, g.p());
          return;
        }
        std::fill(gxn, gxn + g.C * g.H * g.W, T(0));
        for (int64_t p0 = 0; p0 < g.p(); p0 += tile) {
          int64_t pt = std::min(tile, g.p() - p0);
          MapR<T>(col, g.crs(), pt).noalias() =
              W.transpose() * CStridedMap<T>(gyn + p0, g.K, pt, Eigen::OuterStride<>(g.p()));
          col2im(col, g, p0, pt, gxn);
        }
      });
    });
  });
}

void conv2d_backward_weight(const Tensor& gy0, const Tensor& x0, const Conv2dArgs& a, Tensor& gw) {
  RTUNE_ONEDNN_OR_EIGEN(gy0.dtype(), a, conv2d_backward_weight(gy0, x0, a, gw));
  if (a.bf16_products) return cpu::conv2d_backward_weight(bf16_rounded(gy0), bf16_rounded(x0), fp32_products(a), gw);
  Tensor gy = gy0.contiguous(), x = x0.contiguous();
  Geometry g = geometry(x.shape(), gw.shape(), a);
  RTUNE_CHECK(gy.shape() == Shape({g.N, g.K, g.Ho, g.Wo}), "conv2d_backward_weight: grad {} does not match output {}",
              gy.str(), shape_str({g.N, g.K, g.Ho, g.Wo}));
  with_contiguous_output(gw, [&](Tensor& gwd) {
    dispatch_float("conv2d_backward_weight", gy, [&](auto tag) {
      using T = decltype(tag);
      const T* pgy = gy.data<T>();
      const T* px = x.data<T>();
      int threads = omp_get_max_threads();
      std::vector<MatR<T>> partial(size_t(threads), MatR<T>::Zero(g.K, g.crs()));
      int64_t tile = tile_cols(g);
      for_each_image<T>(g.N, g.pointwise() ? 0 : g.crs() * tile, [&](int64_t n, T* col, int tid) {
        const T* xn = px + n * g.C * g.H * g.W;
        const T* gyn = pgy + n * g.K * g.p();
        if (g.pointwise()) {
          partial[size_t(tid)].noalias() += CMapR<T>(gyn, g.K, g.p()) * CMapR<T>(xn, g.crs(), g.p()).transpose();
          return;
        }
        for (int64_t p0 = 0; p0 < g.p(); p0 += tile) {
          int64_t pt = std::min(tile, g.p() - p0);
          im2col(xn, g, p0, pt, col);
          partial[size_t(tid)].noalias() +=
              CStridedMap<T>(gyn + p0, g.K, pt, Eigen::OuterStride<>(g.p())) * CMapR<T>(col, g.crs(), pt).transpose();
        }
      });
      MapR<T> GW(gwd.data<T>(), g.K, g.crs());
      GW = partial[0];
      for (size_t t = 1; t < partial.size(); ++t) GW += partial[t];
    });
  });
}

void conv2d_backward_bias(const Tensor& gy0, Tensor& gb) {
  Tensor gy = gy0.contiguous();
  int64_t N = gy.size(0), K = gy.size(1), P = gy.size(2) * gy.size(3);
  RTUNE_CHECK(gb.shape() == Shape({K}), "conv2d_backward_bias: bias grad {} for {} output channels", gb.str(), K);
  dispatch_float("conv2d_backward_bias", gy, [&](auto tag) {
    using T = decltype(tag);
    const T* p = gy.data<T>();
    T* out = gb.data<T>();
    for (int64_t k = 0; k < K; ++k) {
      double acc = 0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < P; ++i) acc += p[(n * K + k) * P + i];
      out[k] = T(acc);
    }
  });
}

}  // namespace rtune::cpu
