// CPU fused optimizer updates, norms and clamp (the façade ops behind engine/optim/optimizer.cpp):
// the per-element rules of kernels/update_rules.h in element order, and its norm rule with sequential
// double accumulation. Elements are independent: the OpenMP split changes nothing.
// The list updates (*_update_many) run the per-parameter update once per slot, in slot order.
#include <cmath>
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"

namespace rtune::cpu {

namespace {
constexpr int64_t kParallelMin = int64_t(1) << 15;

template <class T> T* state_ptr(const char* opt, const char* what, Tensor* s, const Tensor& p, bool needed) {
  if (!needed) return nullptr;
  RTUNE_CHECK(s && s->defined(), "{}: '{}' is missing but this configuration needs it", opt, what);
  RTUNE_CHECK(s->shape() == p.shape() && s->dtype() == p.dtype() && s->is_contiguous() && s->device() == p.device(),
              "{}: '{}' {} does not match the parameter {}", opt, what, s->str(), p.str());
  return s->data<T>();
}
void check_param(const char* opt, const Tensor& p, const Tensor& g) {
  RTUNE_CHECK(p.is_contiguous(), "{}: the parameter {} must be contiguous", opt, p.str());
  require_same_shape(opt, p, g);
  require_same_dtype(opt, p, g);
}

void sgd_update(const kernels::SgdSlot& s) {
  Tensor& p = *s.param;
  const optim::SgdHyper& h = s.hyper;
  check_param("sgd_step", p, *s.grad);
  Tensor g = s.grad->contiguous();
  dispatch_float("sgd_step", p, [&](auto tag) {
    using T = decltype(tag);
    T* pp = p.data<T>();
    const T* gp = g.data<T>();
    T* bp = state_ptr<T>("sgd_step", "momentum_buf", s.momentum_buf, p, h.momentum != 0.0);
    const bool first_step = s.first_step;
    int64_t n = p.numel();
    T dummy{};
#pragma omp parallel for schedule(static) if (n >= kParallelMin) firstprivate(dummy)
    for (int64_t i = 0; i < n; ++i) optim::sgd_update(pp[i], gp[i], bp ? bp[i] : dummy, h, first_step);
  });
}

void adam_update(const kernels::AdamSlot& slot) {
  Tensor& p = *slot.param;
  const optim::AdamStep& s = slot.step;
  const char* opt = s.h.decoupled ? "adamw_step" : "adam_step";
  check_param(opt, p, *slot.grad);
  RTUNE_CHECK(s.step >= 1, "{}: step must be >= 1 (got {}); use make_adam_step(h, step)", opt, s.step);
  Tensor g = slot.grad->contiguous();
  dispatch_float(opt, p, [&](auto tag) {
    using T = decltype(tag);
    T* pp = p.data<T>();
    const T* gp = g.data<T>();
    T* mp = state_ptr<T>(opt, "exp_avg", slot.exp_avg, p, true);
    T* vp = state_ptr<T>(opt, "exp_avg_sq", slot.exp_avg_sq, p, true);
    T* xp = state_ptr<T>(opt, "max_exp_avg_sq", slot.max_exp_avg_sq, p, s.h.amsgrad);
    int64_t n = p.numel();
    T dummy{};
#pragma omp parallel for schedule(static) if (n >= kParallelMin) firstprivate(dummy)
    for (int64_t i = 0; i < n; ++i) optim::adam_update(pp[i], gp[i], mp[i], vp[i], xp ? xp[i] : dummy, s);
  });
}

void rmsprop_update(const kernels::RmspropSlot& s) {
  Tensor& p = *s.param;
  const optim::RmspropHyper& h = s.hyper;
  check_param("rmsprop_step", p, *s.grad);
  Tensor g = s.grad->contiguous();
  dispatch_float("rmsprop_step", p, [&](auto tag) {
    using T = decltype(tag);
    T* pp = p.data<T>();
    const T* gp = g.data<T>();
    T* sp = state_ptr<T>("rmsprop_step", "square_avg", s.square_avg, p, true);
    T* ap = state_ptr<T>("rmsprop_step", "grad_avg", s.grad_avg, p, h.centered);
    T* bp = state_ptr<T>("rmsprop_step", "momentum_buf", s.momentum_buf, p, h.momentum > 0.0);
    int64_t n = p.numel();
    T dummy_a{}, dummy_b{};
#pragma omp parallel for schedule(static) if (n >= kParallelMin) firstprivate(dummy_a, dummy_b)
    for (int64_t i = 0; i < n; ++i)
      optim::rmsprop_update(pp[i], gp[i], sp[i], ap ? ap[i] : dummy_a, bp ? bp[i] : dummy_b, h);
  });
}
}  // namespace

void sgd_update_many(const std::vector<kernels::SgdSlot>& slots) {
  for (const kernels::SgdSlot& s : slots) sgd_update(s);
}
void adam_update_many(const std::vector<kernels::AdamSlot>& slots) {
  for (const kernels::AdamSlot& s : slots) adam_update(s);
}
void rmsprop_update_many(const std::vector<kernels::RmspropSlot>& slots) {
  for (const kernels::RmspropSlot& s : slots) rmsprop_update(s);
}

std::vector<double> norms(const std::vector<Tensor>& xs, double p) {
  RTUNE_CHECK(p > 0.0, "norms: norm_type must be > 0 or inf, got {}", p);
  std::vector<double> out;
  for (const Tensor& x0 : xs) {
    Tensor x = x0.contiguous();
    dispatch_float("norms", x, [&](auto tag) {
      using T = decltype(tag);
      const T* v = x.data<T>();
      const int64_t n = x.numel();
      const int kind = optim::norm_kind(p);
      double acc = 0.0;  // sequential, in element order
      for (int64_t i = 0; i < n; ++i) acc = optim::norm_add(acc, double(v[i]), kind, p);
      const double s = optim::norm_finish(acc, kind, p);
      out.push_back(s);
    });
  }
  return out;
}

void clamp(const Tensor& x0, double lo, double hi, Tensor& y) {
  require_same_shape("clamp", x0, y);
  require_same_dtype("clamp", x0, y);
  RTUNE_CHECK(y.is_contiguous(), "clamp: output must be contiguous, got {}", y.str());
  Tensor x = x0.contiguous();
  dispatch_float("clamp", y, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const T l = T(lo), h = T(hi);
    int64_t n = y.numel();
    for (int64_t i = 0; i < n; ++i) py[i] = optim::clamp_value(px[i], l, h);
  });
}

}  // namespace rtune::cpu
