// Fused optimizer updates on the device: one kernel per parameter applying the per-element rules of
// engine/optim/update_rules.h (RTUNE_HD functions: the very code the CPU runs, PyTorch's single-tensor
// SGD / Adam / AdamW / RMSprop), so a device step equals the CPU step up to the device's rounding of
// sqrt/division (exact in IEEE: both are correctly rounded). Per-tensor norms for clip_grad_norm_
// reduce in double (tree order) and come back in one copy; clamp serves clip_grad_value_.
#include <cmath>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/handles.h"
#include "kernels/cuda/kernel_util.cuh"

namespace rtune::cuda {

namespace {

template <class T>
RT_GLOBAL void sgd_kernel(T* p, const T* g, T* buf, optim::SgdHyper h, bool first, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    T dummy{};
    optim::sgd_update(p[i], g[i], buf ? buf[i] : dummy, h, first);
  }
}

template <class T>
RT_GLOBAL void adam_kernel(T* p, const T* g, T* m, T* v, T* vmax, optim::AdamStep s, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    T dummy{};
    optim::adam_update(p[i], g[i], m[i], v[i], vmax ? vmax[i] : dummy, s);
  }
}

template <class T>
RT_GLOBAL void rmsprop_kernel(T* p, const T* g, T* sq, T* ga, T* buf, optim::RmspropHyper h, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    T da{}, db{};
    optim::rmsprop_update(p[i], g[i], sq[i], ga ? ga[i] : da, buf ? buf[i] : db, h);
  }
}

// kind: 0 Σx², 1 Σ|x|, 2 max|x| (NaN wins), 3 Σ|x|^p
template <class T>
RT_GLOBAL void norm_partial_kernel(const T* x, int64_t n, int kind, double p, double* partial) {
  __shared__ double smem[kThreads];
  double acc = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    double a = fabs(double(load(x[i])));
    if (kind == 0) acc += a * a;
    else if (kind == 1) acc += a;
    else if (kind == 2) acc = nan_max(acc, a);
    else acc += pow(a, p);
  }
  double r = kind == 2 ? block_max(acc, smem) : block_sum(acc, smem);
  if (threadIdx.x == 0) partial[blockIdx.x] = r;
}
RT_GLOBAL void norm_final_kernel(const double* partial, int64_t parts, int kind, double* out) {
  __shared__ double smem[kThreads];
  double acc = 0;
  for (int64_t i = threadIdx.x; i < parts; i += blockDim.x) acc = kind == 2 ? nan_max(acc, partial[i]) : acc + partial[i];
  double r = kind == 2 ? block_max(acc, smem) : block_sum(acc, smem);
  if (threadIdx.x == 0) *out = r;
}

template <class T>
RT_GLOBAL void clamp_kernel(const T* x, T* y, T lo, T hi, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = x[i] < lo ? lo : (x[i] > hi ? hi : x[i]);
}

template <class T> T* state_ptr(const char* opt, const char* what, Tensor& s, const Tensor& p, bool needed) {
  if (!needed) return nullptr;
  RTUNE_CHECK(s.defined(), "{}: '{}' is undefined but this configuration needs it", opt, what);
  RTUNE_CHECK(s.shape() == p.shape() && s.dtype() == p.dtype() && s.is_contiguous() && s.device() == p.device(),
              "{}: '{}' {} does not match the parameter {}", opt, what, s.str(), p.str());
  return dptr<T>(s);
}
void check_param(const char* opt, const Tensor& p, const Tensor& g) {
  RTUNE_CHECK(p.is_contiguous(), "{}: the parameter {} must be contiguous", opt, p.str());
  require_same_shape(opt, p, g);
  require_same_dtype(opt, p, g);
}

}  // namespace

void sgd_update(Tensor& p, const Tensor& g0, Tensor& buf, const optim::SgdHyper& h, bool first_step) {
  check_param("sgd_step", p, g0);
  Tensor g = g0.contiguous();
  int64_t n = p.numel();
  if (n == 0) return;
  dispatch_f32_f64("sgd_step", p, [&](auto tag) {
    using T = decltype(tag);
    launch(sgd_kernel<T>, grid_for(n, kThreads), kThreads, 0, stream(), dptr<T>(p), dptr<const T>(g),
           state_ptr<T>("sgd_step", "momentum_buf", buf, p, h.momentum != 0.0), h, first_step, n);
  });
}

void adam_update(Tensor& p, const Tensor& g0, Tensor& m, Tensor& v, Tensor& vmax, const optim::AdamStep& s) {
  const char* opt = s.h.decoupled ? "adamw_step" : "adam_step";
  check_param(opt, p, g0);
  RTUNE_CHECK(s.step >= 1, "{}: step must be >= 1 (got {}); use make_adam_step(h, step)", opt, s.step);
  Tensor g = g0.contiguous();
  int64_t n = p.numel();
  if (n == 0) return;
  dispatch_f32_f64(opt, p, [&](auto tag) {
    using T = decltype(tag);
    launch(adam_kernel<T>, grid_for(n, kThreads), kThreads, 0, stream(), dptr<T>(p), dptr<const T>(g),
           state_ptr<T>(opt, "exp_avg", m, p, true), state_ptr<T>(opt, "exp_avg_sq", v, p, true),
           state_ptr<T>(opt, "max_exp_avg_sq", vmax, p, s.h.amsgrad), s, n);
  });
}

void rmsprop_update(Tensor& p, const Tensor& g0, Tensor& sq, Tensor& ga, Tensor& buf, const optim::RmspropHyper& h) {
  check_param("rmsprop_step", p, g0);
  Tensor g = g0.contiguous();
  int64_t n = p.numel();
  if (n == 0) return;
  dispatch_f32_f64("rmsprop_step", p, [&](auto tag) {
    using T = decltype(tag);
    launch(rmsprop_kernel<T>, grid_for(n, kThreads), kThreads, 0, stream(), dptr<T>(p), dptr<const T>(g),
           state_ptr<T>("rmsprop_step", "square_avg", sq, p, true),
           state_ptr<T>("rmsprop_step", "grad_avg", ga, p, h.centered),
           state_ptr<T>("rmsprop_step", "momentum_buf", buf, p, h.momentum > 0.0), h, n);
  });
}

std::vector<double> norms(const std::vector<Tensor>& xs, double p) {
  RTUNE_CHECK(p > 0.0, "norms: norm_type must be > 0 or inf, got {}", p);
  if (xs.empty()) return {};
  const int kind = std::isinf(p) ? 2 : p == 2.0 ? 0 : p == 1.0 ? 1 : 3;
  Tensor results = empty({int64_t(xs.size())}, {DType::f64, Device::cuda(0)});
  Tensor partial = empty({int64_t(kMaxGridBlocks)}, {DType::f64, Device::cuda(0)});
  for (size_t t = 0; t < xs.size(); ++t) {
    Tensor x = xs[t].contiguous();
    int64_t n = x.numel();
    dim3 grid = grid_for(n, kThreads);
    dispatch_floating("norms", x, [&](auto tag) {
      using T = decltype(tag);
      launch(norm_partial_kernel<T>, grid, kThreads, 0, stream(), dptr<const T>(x), n, kind, p, dptr<double>(partial));
    });
    launch(norm_final_kernel, dim3(1), kThreads, 0, stream(), dptr<const double>(partial), int64_t(grid.x), kind,
           dptr<double>(results) + t);
  }
  std::vector<double> out = results.to_vector<double>();
  for (double& v : out) {
    if (kind == 0) v = std::sqrt(v);
    else if (kind == 3) v = std::pow(v, 1.0 / p);
  }
  return out;
}

void clamp(const Tensor& x0, double lo, double hi, Tensor& y) {
  require_same_shape("clamp", x0, y);
  require_same_dtype("clamp", x0, y);
  RTUNE_CHECK(y.is_contiguous(), "clamp: output must be contiguous, got {}", y.str());
  Tensor x = x0.contiguous();
  int64_t n = y.numel();
  if (n == 0) return;
  dispatch_f32_f64("clamp", y, [&](auto tag) {
    using T = decltype(tag);
    launch(clamp_kernel<T>, grid_for(n, kThreads), kThreads, 0, stream(), dptr<const T>(x), dptr<T>(y), T(lo), T(hi), n);
  });
}

}  // namespace rtune::cuda
