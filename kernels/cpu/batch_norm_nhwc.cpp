#include "kernels/cpu/batch_norm_nhwc.h"
#include <algorithm>
#include <type_traits>
#include "kernels/cpu/batch_norm_formulas.h"
#include "kernels/cpu/cpu_util.h"

namespace rtune::cpu::nhwc {

namespace {
struct Dims {
  int64_t M, C;  // rows (N·H·W) of C channels
};
Dims dims_of(const Tensor& x) { return {x.size(0) * x.size(2) * x.size(3), x.size(1)}; }

// fn(out) on `out` itself when channels-last, else on a channels-last temporary copied into it after.
template <class F> void with_nhwc_output(Tensor& out, F&& fn) {
  if (out.is_contiguous(MemoryFormat::channels_last)) return fn(out);
  Tensor tmp = empty(out.shape(), {out.dtype(), out.device(), MemoryFormat::channels_last});
  fn(tmp);
  out.copy_(tmp);
}
template <class T> const T* ptr_or_null(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }


// Per-channel sums over the rows, K of them (1 or 2), in double: each fixed block of kBlockRows rows
// sums into its own C-vector (the inner loop runs over the contiguous channels: vectorised, C
// independent chains), then the blocks are added in order. The blocks do not depend on the thread
// count, so neither does the result. row(r, a, b) adds row r's terms into a[0..C) (and b[0..C)).
constexpr int64_t kBlockRows = 256;
// Below this many elements a pass runs on the calling thread: waking the others costs more than the work
// (small images and narrow models: the demo's 32-pixel ResNets).
constexpr int64_t kParallelMin = int64_t(1) << 15;
template <int K, class Row> void channel_sums(const Dims& d, double* s0, double* s1, Row&& row) {
  const int64_t blocks = (d.M + kBlockRows - 1) / kBlockRows, stride = K * d.C;
  double* partial = thread_scratch<double, 0>(size_t(blocks * stride));
  const bool parallel = d.M * d.C >= kParallelMin;
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    double* a = partial + b * stride;
    std::fill(a, a + stride, 0.0);
    for (int64_t r = b * kBlockRows; r < std::min(d.M, (b + 1) * kBlockRows); ++r) row(r, a, a + (K - 1) * d.C);
  }
#pragma omp parallel for if (parallel) schedule(static)
  for (int64_t c = 0; c < d.C; ++c) {
    double t0 = 0, t1 = 0;
    for (int64_t b = 0; b < blocks; ++b) {
      t0 += partial[b * stride + c];
      if constexpr (K == 2) t1 += partial[b * stride + d.C + c];
    }
    s0[c] = t0;
    if constexpr (K == 2) s1[c] = t1;
  }
}

// fn(r) for every row, rows in parallel (past kParallelMin elements).
template <class F> void each_row(const Dims& d, F&& fn) {
#pragma omp parallel for if (d.M * d.C >= kParallelMin) schedule(static)
  for (int64_t r = 0; r < d.M; ++r) fn(r);
}
}  // namespace

void batch_norm_forward_train(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                              Tensor& running_var, double momentum, double eps, Tensor& y, Tensor& save_mean,
                              Tensor& save_invstd, const Tensor& residual0, bool relu) {
  const Dims d = dims_of(x);
  const Tensor residual = as_channels_last(residual0);
  with_nhwc_output(y, [&](Tensor& yd) {
    dispatch_float("batch_norm_forward_train", x, [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      T* py = yd.data<T>();
      const T* pw = ptr_or_null<T>(weight);
      const T* pb = ptr_or_null<T>(bias);
      const T* pr = ptr_or_null<T>(residual);
      T* rm = running_mean.defined() ? running_mean.data<T>() : nullptr;
      T* rv = running_var.defined() ? running_var.data<T>() : nullptr;
      T* sm = save_mean.data<T>();
      T* si = save_invstd.data<T>();
      double* mean = thread_scratch<double, 1>(size_t(2 * d.C));
      double* sq = mean + d.C;
      channel_sums<1>(d, mean, nullptr, [&](int64_t r, double* a, double*) {
        const T* p = px + r * d.C;
        for (int64_t c = 0; c < d.C; ++c) a[c] += double(p[c]);
      });
      for (int64_t c = 0; c < d.C; ++c) mean[c] /= double(d.M);
      channel_sums<1>(d, sq, nullptr, [&](int64_t r, double* a, double*) {
        const T* p = px + r * d.C;
        for (int64_t c = 0; c < d.C; ++c) a[c] += (double(p[c]) - mean[c]) * (double(p[c]) - mean[c]);
      });
      double* scale = thread_scratch<double, 2>(size_t(2 * d.C));
      double* shift = scale + d.C;
      for (int64_t c = 0; c < d.C; ++c) {
        const bn::Affine a = bn::finish_train_channel(c, mean[c], sq[c], d.M, momentum, eps, pw, pb, sm, si, rm, rv);
        scale[c] = a.scale, shift[c] = a.shift;
      }
      each_row(d, [&](int64_t r) {
        const T* p = px + r * d.C;
        T* __restrict q = py + r * d.C;
        if (pr) {
          const T* s = pr + r * d.C;
          for (int64_t c = 0; c < d.C; ++c) q[c] = bn::add_then_relu(bn::normalised(p[c], scale[c], shift[c]), s[c], relu);
        } else if (relu) {
          for (int64_t c = 0; c < d.C; ++c) q[c] = bn::relu_of(bn::normalised(p[c], scale[c], shift[c]));
        } else {
          for (int64_t c = 0; c < d.C; ++c) q[c] = bn::normalised(p[c], scale[c], shift[c]);
        }
      });
    });
  });
}

void batch_norm_forward_eval(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                             const Tensor& running_var, double eps, Tensor& y) {
  const Dims d = dims_of(x);
  with_nhwc_output(y, [&](Tensor& yd) {
    dispatch_float("batch_norm_forward_eval", x, [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      T* py = yd.data<T>();
      const T* pw = ptr_or_null<T>(weight);
      const T* pb = ptr_or_null<T>(bias);
      const T* rm = running_mean.data<T>();
      const T* rv = running_var.data<T>();
      T* ps = thread_scratch<T, 3>(size_t(2 * d.C));  // scale, then shift: in T, as the NCHW kernel computes them
      T* pt = ps + d.C;
      for (int64_t c = 0; c < d.C; ++c) {
        const bn::AffineT<T> a = bn::eval_affine(pw, pb, rm, rv, c, eps);
        ps[c] = a.scale, pt[c] = a.shift;
      }
      each_row(d, [&](int64_t r) {
        const T* p = px + r * d.C;
        T* __restrict q = py + r * d.C;
        for (int64_t c = 0; c < d.C; ++c) q[c] = p[c] * ps[c] + pt[c];
      });
    });
  });
}

void batch_norm_backward(const Tensor& gy0, const Tensor& x, const Tensor& weight, const Tensor& mean,
                         const Tensor& invstd, bool training, Tensor& gx, Tensor& gw, Tensor& gb, const Tensor& relu_out0) {
  const Dims d = dims_of(x);
  const Tensor gy = as_channels_last(gy0), relu_out = as_channels_last(relu_out0);
  // As the NCHW kernel: with relu_out (a ReLU follows), the gradient is gy where the output is positive.
  auto body = [&](Tensor* gxd, auto masked_tag) {
    using Masked = decltype(masked_tag);
    dispatch_float("batch_norm_backward", x, [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      const T* pg = gy.data<T>();
      const T* pw = ptr_or_null<T>(weight);
      const T* pm = mean.data<T>();
      const T* pi = invstd.data<T>();
      const T* py = ptr_or_null<T>(relu_out);
      T* pgw = gw.defined() ? gw.data<T>() : nullptr;
      T* pgb = gb.defined() ? gb.data<T>() : nullptr;
      double* m = thread_scratch<double, 1>(size_t(4 * d.C));  // mean, invstd, Σgy, Σgy·(x − mean)
      double* is = m + d.C;
      double* sum_g = is + d.C;
      double* sum_gx = sum_g + d.C;
      for (int64_t c = 0; c < d.C; ++c) m[c] = pm[c], is[c] = pi[c];
      channel_sums<2>(d, sum_g, sum_gx, [&](int64_t r, double* a, double* b) {
        const T* p = px + r * d.C;
        const T* g = pg + r * d.C;
        const T* yv = Masked::value ? py + r * d.C : nullptr;
        for (int64_t c = 0; c < d.C; ++c) {
          double v;
          if constexpr (Masked::value) v = masked_grad(g[c], yv[c]);
          else v = double(g[c]);
          a[c] += v;
          b[c] += v * (double(p[c]) - m[c]);
        }
      });
      for (int64_t c = 0; c < d.C; ++c) {
        sum_gx[c] *= is[c];  // Σ gy·x̂
        if (pgw) pgw[c] = T(sum_gx[c]);
        if (pgb) pgb[c] = T(sum_g[c]);
      }
      if (!gxd) return;
      T* pgx = gxd->data<T>();
      double* k = thread_scratch<double, 2>(size_t(3 * d.C));  // per channel: w·invstd/M (training) or w (eval), mean gy, proj
      double* mean_g = k + d.C;
      double* proj = mean_g + d.C;
      for (int64_t c = 0; c < d.C; ++c) {
        const double w = pw ? double(pw[c]) : 1.0;
        k[c] = training ? w * is[c] / double(d.M) : w;
        mean_g[c] = sum_g[c] / double(d.M);
        proj[c] = sum_gx[c] / double(d.M);
      }
      each_row(d, [&](int64_t r) {
        const T* p = px + r * d.C;
        const T* g = pg + r * d.C;
        const T* yv = Masked::value ? py + r * d.C : nullptr;
        T* q = pgx + r * d.C;
        auto grad = [g, yv](int64_t c) {
          if constexpr (Masked::value) return T(masked_grad(g[c], yv[c]));
          else return g[c];
        };
        if (training) {
#pragma omp simd
          for (int64_t c = 0; c < d.C; ++c)
            q[c] = bn::train_input_grad(grad(c), p[c], m[c], is[c], k[c], d.M, mean_g[c], proj[c]);
        } else {
#pragma omp simd
          for (int64_t c = 0; c < d.C; ++c) q[c] = bn::eval_input_grad(grad(c), k[c], is[c]);
        }
      });
    });
  };
  auto run = [&](Tensor* gxd) {
    if (relu_out.defined()) body(gxd, std::true_type{});
    else body(gxd, std::false_type{});
  };
  if (gx.defined()) with_nhwc_output(gx, [&](Tensor& gxd) { run(&gxd); });
  else run(nullptr);
}

void batch_norm_channel_sums(const Tensor& x, Tensor& sums) {
  const Dims d = dims_of(x);
  double* out = sums.data<double>();
  dispatch_float("batch_norm_channel_sums", x, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    channel_sums<2>(d, out, out + d.C, [&](int64_t r, double* a, double* b) {
      const T* p = px + r * d.C;
      for (int64_t c = 0; c < d.C; ++c) a[c] += double(p[c]), b[c] += double(p[c]) * double(p[c]);
    });
  });
}

void batch_norm_normalize(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& stats, Tensor& y) {
  const Dims d = dims_of(x);
  const double* st = stats.data<double>();
  with_nhwc_output(y, [&](Tensor& yd) {
    dispatch_float("batch_norm_normalize", x, [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      T* py = yd.data<T>();
      const T* pw = ptr_or_null<T>(weight);
      const T* pb = ptr_or_null<T>(bias);
      double* scale = thread_scratch<double, 2>(size_t(2 * d.C));
      double* shift = scale + d.C;
      for (int64_t c = 0; c < d.C; ++c) {
        const bn::Affine a = bn::affine(pw, pb, c, st[c], st[d.C + c]);
        scale[c] = a.scale, shift[c] = a.shift;
      }
      each_row(d, [&](int64_t r) {
        const T* p = px + r * d.C;
        T* __restrict q = py + r * d.C;
        for (int64_t c = 0; c < d.C; ++c) q[c] = bn::normalised(p[c], scale[c], shift[c]);
      });
    });
  });
}

void batch_norm_backward_sums(const Tensor& gy0, const Tensor& x, const Tensor& mean, const Tensor& invstd, Tensor& sums) {
  const Dims d = dims_of(x);
  const Tensor gy = as_channels_last(gy0);
  double* out = sums.data<double>();
  dispatch_float("batch_norm_backward_sums", x, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* pg = gy.data<T>();
    const T* pm = mean.data<T>();
    const T* pi = invstd.data<T>();
    double* m = thread_scratch<double, 1>(size_t(d.C));
    for (int64_t c = 0; c < d.C; ++c) m[c] = pm[c];
    channel_sums<2>(d, out, out + d.C, [&](int64_t r, double* a, double* b) {
      const T* p = px + r * d.C;
      const T* g = pg + r * d.C;
      for (int64_t c = 0; c < d.C; ++c) a[c] += g[c], b[c] += g[c] * (p[c] - m[c]);
    });
    for (int64_t c = 0; c < d.C; ++c) out[d.C + c] *= double(pi[c]);  // as the NCHW kernel: then ·invstd
  });
}

void batch_norm_backward_input_from_sums(const Tensor& gy0, const Tensor& x, const Tensor& weight, const Tensor& mean,
                                         const Tensor& invstd, const Tensor& grad_sums, double count, Tensor& gx) {
  const Dims d = dims_of(x);
  const Tensor gy = as_channels_last(gy0);
  const double* sums = grad_sums.data<double>();
  with_nhwc_output(gx, [&](Tensor& gxd) {
    dispatch_float("batch_norm_backward_input_from_sums", x, [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      const T* pg = gy.data<T>();
      const T* pw = ptr_or_null<T>(weight);
      const T* pm = mean.data<T>();
      const T* pi = invstd.data<T>();
      T* q0 = gxd.data<T>();
      double* m = thread_scratch<double, 1>(size_t(5 * d.C));  // mean, invstd, w·invstd, mean gy, proj
      double* is = m + d.C;
      double* k = is + d.C;
      double* mean_g = k + d.C;
      double* proj = mean_g + d.C;
      for (int64_t c = 0; c < d.C; ++c) {
        m[c] = pm[c], is[c] = pi[c], k[c] = (pw ? double(pw[c]) : 1.0) * is[c];
        mean_g[c] = sums[c] / count, proj[c] = sums[d.C + c] / count;
      }
      each_row(d, [&](int64_t r) {
        const T* p = px + r * d.C;
        const T* g = pg + r * d.C;
        T* __restrict q = q0 + r * d.C;
        for (int64_t c = 0; c < d.C; ++c)
          q[c] = bn::input_grad_from_sums(g[c], p[c], m[c], is[c], k[c], mean_g[c], proj[c]);
      });
    });
  });
}

}  // namespace rtune::cpu::nhwc
