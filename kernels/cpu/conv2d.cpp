// CPU conv2d (torch.nn.functional.conv2d, groups=1): im2col + Eigen GEMM per image, NCHW.
// Images are spread over OpenMP threads when the batch is large enough, otherwise each GEMM is
// parallelised by Eigen. 1×1 stride-1 unpadded convolutions skip im2col entirely.
#include <Eigen/Core>
#include <omp.h>
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"

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

Geometry geometry(const Shape& x, const Shape& w, const Conv2dArgs& a) {
  Shape y = kernels::conv2d_out_shape(x, w, a);
  return {x[0], x[1], x[2], x[3], w[0], w[2], w[3], y[2], y[3], a};
}

// col[(c*R + r)*S + s][oh*Wo + ow] = x[c][oh*sh - ph + r*dh][ow*sw - pw + s*dw] (0 outside).
template <class T> void im2col(const T* x, const Geometry& g, T* col) {
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t r = 0; r < g.R; ++r)
      for (int64_t s = 0; s < g.S; ++s) {
        T* row = col + ((c * g.R + r) * g.S + s) * g.p();
        for (int64_t oh = 0; oh < g.Ho; ++oh) {
          int64_t ih = oh * g.a.stride_h - g.a.pad_h + r * g.a.dilation_h;
          T* out = row + oh * g.Wo;
          if (ih < 0 || ih >= g.H) {
            std::fill(out, out + g.Wo, T(0));
            continue;
          }
          const T* in = x + (c * g.H + ih) * g.W;
          for (int64_t ow = 0; ow < g.Wo; ++ow) {
            int64_t iw = ow * g.a.stride_w - g.a.pad_w + s * g.a.dilation_w;
            out[ow] = (iw >= 0 && iw < g.W) ? in[iw] : T(0);
          }
        }
      }
}

// The adjoint of im2col: gx (zeroed by the caller) += scattered col.
template <class T> void col2im(const T* col, const Geometry& g, T* gx) {
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t r = 0; r < g.R; ++r)
      for (int64_t s = 0; s < g.S; ++s) {
        const T* row = col + ((c * g.R + r) * g.S + s) * g.p();
        for (int64_t oh = 0; oh < g.Ho; ++oh) {
          int64_t ih = oh * g.a.stride_h - g.a.pad_h + r * g.a.dilation_h;
          if (ih < 0 || ih >= g.H) continue;
          T* out = gx + (c * g.H + ih) * g.W;
          const T* in = row + oh * g.Wo;
          for (int64_t ow = 0; ow < g.Wo; ++ow) {
            int64_t iw = ow * g.a.stride_w - g.a.pad_w + s * g.a.dilation_w;
            if (iw >= 0 && iw < g.W) out[iw] += in[ow];
          }
        }
      }
}

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

void conv2d_forward(const Tensor& x0, const Tensor& w0, const Tensor& bias, const Conv2dArgs& a, Tensor& y) {
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
      for_each_image<T>(g.N, g.pointwise() ? 0 : g.crs() * g.p(), [&](int64_t n, T* col, int) {
        const T* xn = px + n * g.C * g.H * g.W;
        if (!g.pointwise()) im2col(xn, g, col);
        CMapR<T> X(g.pointwise() ? xn : col, g.crs(), g.p());
        MapR<T> Y(py + n * g.K * g.p(), g.K, g.p());
        Y.noalias() = W * X;
        if (pb) Y.colwise() += Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(pb, g.K);
      });
    });
  });
}

void conv2d_backward_input(const Tensor& gy0, const Tensor& w0, const Conv2dArgs& a, Tensor& gx) {
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
      for_each_image<T>(g.N, g.pointwise() ? 0 : g.crs() * g.p(), [&](int64_t n, T* col, int) {
        CMapR<T> GY(pgy + n * g.K * g.p(), g.K, g.p());
        T* gxn = pgx + n * g.C * g.H * g.W;
        if (g.pointwise()) {
          MapR<T>(gxn, g.C, g.p()).noalias() = W.transpose() * GY;
          return;
        }
        MapR<T>(col, g.crs(), g.p()).noalias() = W.transpose() * GY;
        std::fill(gxn, gxn + g.C * g.H * g.W, T(0));
        col2im(col, g, gxn);
      });
    });
  });
}

void conv2d_backward_weight(const Tensor& gy0, const Tensor& x0, const Conv2dArgs& a, Tensor& gw) {
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
      for_each_image<T>(g.N, g.pointwise() ? 0 : g.crs() * g.p(), [&](int64_t n, T* col, int tid) {
        const T* xn = px + n * g.C * g.H * g.W;
        if (!g.pointwise()) im2col(xn, g, col);
        CMapR<T> X(g.pointwise() ? xn : col, g.crs(), g.p());
        CMapR<T> GY(pgy + n * g.K * g.p(), g.K, g.p());
        partial[size_t(tid)].noalias() += GY * X.transpose();
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
