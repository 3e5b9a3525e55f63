// CPU batch norm over N,H,W per channel (torch.nn.BatchNorm2d / F.batch_norm), NCHW; channels-last inputs
// go to batch_norm_nhwc.cpp's kernels (the same formulas). Statistics are accumulated in double so
// float32 matches PyTorch's two-pass results closely; channels in parallel.
#include <cstdint>
#include <type_traits>
#include <utility>
#include "kernels/cpu/batch_norm_formulas.h"
#include "kernels/cpu/batch_norm_nhwc.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"

namespace rtune::cpu {

namespace {
struct Dims {
  int64_t N, C, HW;
};
Dims dims_of(const Tensor& x) {
  RTUNE_CHECK(x.dim() >= 2, "batch_norm: expected N×C×… input, got {}", x.str());
  int64_t hw = 1;
  for (int64_t d = 2; d < x.dim(); ++d) hw *= x.size(d);
  return {x.size(0), x.size(1), hw};
}
void check_param(const char* op, const Tensor& p, int64_t C, const char* what) {
  if (!p.defined()) return;
  RTUNE_CHECK(p.numel() == C, "{}: {} has {} elements for {} channels", op, what, p.numel(), C);
}
template <class T> const T* ptr_or_null(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }

// Σ f(i) and Σ g(i) over [0, n) in double, each over 8 independent partial sums. One running sum is one
// dependent add per element (latency-bound: the stem's BatchNorm alone took ~30 ms a step at batch 32);
// 8 lanes let the compiler vectorise. In double the order's effect is far below float32's rounding, and
// float64 (the oracle) stays within ~n·1e-16 relative of any order.
constexpr int kLanes = 8;
inline double lanes_total(const double (&acc)[kLanes], double tail) {
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
}
template <class F> double lane_sum(int64_t n, F&& f) {
  double acc[kLanes] = {}, tail = 0;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) acc[k] += f(i + k);
  for (; i < n; ++i) tail += f(i);
  return lanes_total(acc, tail);
}
template <class F, class G> std::pair<double, double> lane_sums(int64_t n, F&& f, G&& g) {
  double a[kLanes] = {}, b[kLanes] = {}, ta = 0, tb = 0;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) a[k] += f(i + k), b[k] += g(i + k);
  for (; i < n; ++i) ta += f(i), tb += g(i);
  return {lanes_total(a, ta), lanes_total(b, tb)};
}
}  // namespace

void batch_norm_forward_train(const Tensor& x0, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                              Tensor& running_var, double momentum, double eps, Tensor& y, Tensor& save_mean,
                              Tensor& save_invstd, const Tensor& residual0, bool relu) {
  if (strictly_channels_last(x0))
    return nhwc::batch_norm_forward_train(x0, weight, bias, running_mean, running_var, momentum, eps, y, save_mean,
                                          save_invstd, residual0, relu);
  Tensor x = x0.contiguous(), residual = residual0.defined() ? residual0.contiguous() : Tensor();
  Dims d = dims_of(x);
  for (auto [t, n] : {std::pair{&weight, "weight"}, {&bias, "bias"}, {&running_mean, "running_mean"},
                      {&running_var, "running_var"}})
    check_param("batch_norm_forward_train", *t, d.C, n);
  int64_t M = d.N * d.HW;
  RTUNE_CHECK(M > 1, "batch_norm: training needs more than one value per channel, got input {}", x.str());
  with_contiguous_output(y, [&](Tensor& yd) {
    dispatch_float("batch_norm_forward_train", x, [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      T* py = yd.data<T>();
      const T* pw = ptr_or_null<T>(weight);
      const T* pb = ptr_or_null<T>(bias);
      T* rm = running_mean.defined() ? running_mean.data<T>() : nullptr;
      T* rv = running_var.defined() ? running_var.data<T>() : nullptr;
      T* sm = save_mean.data<T>();
      T* si = save_invstd.data<T>();
      const T* pr = ptr_or_null<T>(residual);
#pragma omp parallel for schedule(static)
      for (int64_t c = 0; c < d.C; ++c) {
        double sum = 0;
        for (int64_t n = 0; n < d.N; ++n) {
          const T* p = px + (n * d.C + c) * d.HW;
          sum += lane_sum(d.HW, [p](int64_t i) { return double(p[i]); });
        }
        double mean = sum / double(M), sq = 0;
        for (int64_t n = 0; n < d.N; ++n) {
          const T* p = px + (n * d.C + c) * d.HW;
          sq += lane_sum(d.HW, [p, mean](int64_t i) { return (double(p[i]) - mean) * (double(p[i]) - mean); });
        }
        const auto [scale, shift] = bn::finish_train_channel(c, mean, sq, M, momentum, eps, pw, pb, sm, si, rm, rv);
        for (int64_t n = 0; n < d.N; ++n) {
          const int64_t at = (n * d.C + c) * d.HW;
          const T* p = px + at;
          T* q = py + at;
          if (pr) {
            const T* r = pr + at;
            for (int64_t i = 0; i < d.HW; ++i) q[i] = bn::add_then_relu(bn::normalised(p[i], scale, shift), r[i], relu);
          } else if (relu) {
            for (int64_t i = 0; i < d.HW; ++i) q[i] = bn::relu_of(bn::normalised(p[i], scale, shift));
          } else {
            for (int64_t i = 0; i < d.HW; ++i) q[i] = bn::normalised(p[i], scale, shift);
          }
        }
      }
    });
  });
}

void batch_norm_forward_eval(const Tensor& x0, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                             const Tensor& running_var, double eps, Tensor& y) {
  if (strictly_channels_last(x0)) return nhwc::batch_norm_forward_eval(x0, weight, bias, running_mean, running_var, eps, y);
  Tensor x = x0.contiguous();
  Dims d = dims_of(x);
  for (auto [t, n] : {std::pair{&weight, "weight"}, {&bias, "bias"}, {&running_mean, "running_mean"},
                      {&running_var, "running_var"}})
    check_param("batch_norm_forward_eval", *t, d.C, n);
  RTUNE_CHECK(running_mean.defined() && running_var.defined(), "batch_norm: eval mode needs running statistics");
  with_contiguous_output(y, [&](Tensor& yd) {
    dispatch_float("batch_norm_forward_eval", x, [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      T* py = yd.data<T>();
      const T* pw = ptr_or_null<T>(weight);
      const T* pb = ptr_or_null<T>(bias);
      const T* rm = running_mean.data<T>();
      const T* rv = running_var.data<T>();
#pragma omp parallel for collapse(2) schedule(static)
      for (int64_t n = 0; n < d.N; ++n)
        for (int64_t c = 0; c < d.C; ++c) {
          const auto [scale, shift] = bn::eval_affine(pw, pb, rm, rv, c, eps);
          const T* p = px + (n * d.C + c) * d.HW;
          T* q = py + (n * d.C + c) * d.HW;
          for (int64_t i = 0; i < d.HW; ++i) q[i] = p[i] * scale + shift;
        }
    });
  });
}

void batch_norm_backward(const Tensor& gy0, const Tensor& x0, const Tensor& weight, const Tensor& mean,
                         const Tensor& invstd, bool training, Tensor& gx, Tensor& gw, Tensor& gb, const Tensor& relu_out0) {
  if (strictly_channels_last(x0)) return nhwc::batch_norm_backward(gy0, x0, weight, mean, invstd, training, gx, gw, gb, relu_out0);
  Tensor gy = gy0.contiguous(), x = x0.contiguous(), relu_out = relu_out0.defined() ? relu_out0.contiguous() : Tensor();
  Dims d = dims_of(x);
  int64_t M = d.N * d.HW;
  // Masked: a ReLU follows (relu_out, its output): the gradient reaching the batch norm is gy where the
  // output is positive, else 0 (relu_backward's values), read in this pass instead of one of its own.
  // A compile-time switch keeps each instantiation's loops as simple as the unmasked ones (vectorised).
  auto body = [&](Tensor* gxd, auto masked_tag) {
    using Masked = decltype(masked_tag);  // a type: lambdas below read it without a capture
    dispatch_float("batch_norm_backward", x, [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      const T* pg = gy.data<T>();
      const T* pw = ptr_or_null<T>(weight);
      const T* pm = mean.data<T>();
      const T* pi = invstd.data<T>();
      const T* py = ptr_or_null<T>(relu_out);
      T* pgx = gxd ? gxd->data<T>() : nullptr;
      T* pgw = gw.defined() ? gw.data<T>() : nullptr;
      T* pgb = gb.defined() ? gb.data<T>() : nullptr;
#pragma omp parallel for schedule(static)
      for (int64_t c = 0; c < d.C; ++c) {
        double sum_g = 0, sum_gxhat = 0, m = pm[c], is = pi[c];
        for (int64_t n = 0; n < d.N; ++n) {
          const T* p = px + (n * d.C + c) * d.HW;
          const T* g = pg + (n * d.C + c) * d.HW;
          const T* yv = Masked::value ? py + (n * d.C + c) * d.HW : nullptr;
          auto grad = [g, yv](int64_t i) {
            if constexpr (Masked::value) return masked_grad(g[i], yv[i]);
            else return double(g[i]);
          };
          auto [sg, sgx] = lane_sums(d.HW, grad, [grad, p, m](int64_t i) { return grad(i) * (double(p[i]) - m); });
          sum_g += sg;
          sum_gxhat += sgx;
        }
        sum_gxhat *= is;  // Σ gy·x̂
        if (pgw) pgw[c] = T(sum_gxhat);
        if (pgb) pgb[c] = T(sum_g);
        if (!pgx) continue;
        double w = pw ? double(pw[c]) : 1.0;
        for (int64_t n = 0; n < d.N; ++n) {
          const T* p = px + (n * d.C + c) * d.HW;
          const T* g = pg + (n * d.C + c) * d.HW;
          const T* yv = Masked::value ? py + (n * d.C + c) * d.HW : nullptr;
          T* q = pgx + (n * d.C + c) * d.HW;
          auto grad = [g, yv](int64_t i) {
            if constexpr (Masked::value) return T(masked_grad(g[i], yv[i]));
            else return g[i];
          };
          if (training) {
            // dx = w·invstd/M · (M·gy − Σgy − x̂·Σ(gy·x̂)). q is a fresh gradient, apart from p, g and
            // yv: `omp simd` says so where the compiler would test it at run time.
            double k = w * is / double(M), mean_g = sum_g / double(M), proj = sum_gxhat / double(M);
#pragma omp simd
            for (int64_t i = 0; i < d.HW; ++i) q[i] = bn::train_input_grad(grad(i), p[i], m, is, k, M, mean_g, proj);
          } else {
            for (int64_t i = 0; i < d.HW; ++i) q[i] = bn::eval_input_grad(grad(i), w, is);
          }
        }
      }
    });
  };
  auto run = [&](Tensor* gxd) {
    if (relu_out.defined()) body(gxd, std::true_type{});
    else body(gxd, std::false_type{});
  };
  if (gx.defined()) with_contiguous_output(gx, [&](Tensor& gxd) { run(&gxd); });
  else run(nullptr);
}

void batch_norm_channel_sums(const Tensor& x0, Tensor& sums) {
  if (strictly_channels_last(x0)) return nhwc::batch_norm_channel_sums(x0, sums);
  Tensor x = x0.contiguous();
  Dims d = dims_of(x);
  double* out = sums.data<double>();
  dispatch_float("batch_norm_channel_sums", x, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < d.C; ++c) {
      double s = 0, sq = 0;
      for (int64_t n = 0; n < d.N; ++n) {
        const T* p = px + (n * d.C + c) * d.HW;
        for (int64_t i = 0; i < d.HW; ++i) s += double(p[i]), sq += double(p[i]) * double(p[i]);
      }
      out[c] = s;
      out[d.C + c] = sq;
    }
  });
}

void batch_norm_normalize(const Tensor& x0, const Tensor& weight, const Tensor& bias, const Tensor& stats, Tensor& y) {
  if (strictly_channels_last(x0)) return nhwc::batch_norm_normalize(x0, weight, bias, stats, y);
  Tensor x = x0.contiguous();
  Dims d = dims_of(x);
  const double* st = stats.data<double>();
  with_contiguous_output(y, [&](Tensor& yd) {
    dispatch_float("batch_norm_normalize", x, [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      T* py = yd.data<T>();
      const T* pw = ptr_or_null<T>(weight);
      const T* pb = ptr_or_null<T>(bias);
#pragma omp parallel for collapse(2) schedule(static)
      for (int64_t n = 0; n < d.N; ++n)
        for (int64_t c = 0; c < d.C; ++c) {
          const auto [scale, shift] = bn::affine(pw, pb, c, st[c], st[d.C + c]);
          const T* p = px + (n * d.C + c) * d.HW;
          T* q = py + (n * d.C + c) * d.HW;
          for (int64_t i = 0; i < d.HW; ++i) q[i] = bn::normalised(p[i], scale, shift);
        }
    });
  });
}

void batch_norm_backward_sums(const Tensor& gy0, const Tensor& x0, const Tensor& mean, const Tensor& invstd, Tensor& sums) {
  if (strictly_channels_last(x0)) return nhwc::batch_norm_backward_sums(gy0, x0, mean, invstd, sums);
  Tensor gy = gy0.contiguous(), x = x0.contiguous();
  Dims d = dims_of(x);
  double* out = sums.data<double>();
  dispatch_float("batch_norm_backward_sums", x, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* pg = gy.data<T>();
    const T* pm = mean.data<T>();
    const T* pi = invstd.data<T>();
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < d.C; ++c) {
      double sum_g = 0, sum_gxhat = 0, m = pm[c];
      for (int64_t n = 0; n < d.N; ++n) {
        const T* p = px + (n * d.C + c) * d.HW;
        const T* g = pg + (n * d.C + c) * d.HW;
        for (int64_t i = 0; i < d.HW; ++i) sum_g += g[i], sum_gxhat += g[i] * (p[i] - m);
      }
      out[c] = sum_g;
      out[d.C + c] = sum_gxhat * double(pi[c]);  // as batch_norm_backward: Σgy·(x − mean), then ·invstd
    }
  });
}

void batch_norm_backward_input_from_sums(const Tensor& gy0, const Tensor& x0, const Tensor& weight, const Tensor& mean,
                                         const Tensor& invstd, const Tensor& grad_sums, double count, Tensor& gx) {
  if (strictly_channels_last(x0))
    return nhwc::batch_norm_backward_input_from_sums(gy0, x0, weight, mean, invstd, grad_sums, count, gx);
  Tensor gy = gy0.contiguous(), x = x0.contiguous();
  Dims d = dims_of(x);
  const double* sums = grad_sums.data<double>();
  with_contiguous_output(gx, [&](Tensor& gxd) {
    dispatch_float("batch_norm_backward_input_from_sums", x, [&](auto tag) {
      using T = decltype(tag);
      const T* px = x.data<T>();
      const T* pg = gy.data<T>();
      const T* pw = ptr_or_null<T>(weight);
      const T* pm = mean.data<T>();
      const T* pi = invstd.data<T>();
      T* q0 = gxd.data<T>();
#pragma omp parallel for collapse(2) schedule(static)
      for (int64_t n = 0; n < d.N; ++n)
        for (int64_t c = 0; c < d.C; ++c) {
          const double m = pm[c], is = pi[c], k = (pw ? double(pw[c]) : 1.0) * is;
          const double mean_g = sums[c] / count, proj = sums[d.C + c] / count;
          const T* p = px + (n * d.C + c) * d.HW;
          const T* g = pg + (n * d.C + c) * d.HW;
          T* q = q0 + (n * d.C + c) * d.HW;
          for (int64_t i = 0; i < d.HW; ++i) q[i] = bn::input_grad_from_sums(g[i], p[i], m, is, k, mean_g, proj);
        }
    });
  });
}

}  // namespace rtune::cpu
