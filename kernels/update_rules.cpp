// CPU reference loops over the per-element rules of update_rules.h (PyTorch single-tensor optimizers).
// Elements are independent, so the OpenMP split cannot change any result.
#include "kernels/update_rules.h"

#include "engine/error.h"

namespace rtune::optim {
namespace {

// Large tensors only: below this the thread start-up costs more than the loop.
constexpr size_t kParallelMin = size_t(1) << 15;

template <class S>
void require_size(const char* opt, const char* what, const S& s, size_t n) {
  if (s.size() == n) return;
  if (s.empty()) fail("{}: '{}' is empty but this configuration needs it ({} elements)", opt, what, n);
  fail("{}: '{}' has {} elements, the parameter has {}", opt, what, s.size(), n);
}

}  // namespace

template <class T>
void sgd_step(std::span<T> p, std::span<const T> g, std::span<T> momentum_buf, const SgdHyper& h,
              bool first_step) {
  const size_t n = p.size();
  require_size("sgd_step", "grad", g, n);
  const bool use_buf = h.momentum != 0.0;
  if (use_buf) require_size("sgd_step", "momentum_buf", momentum_buf, n);
  T* pp = p.data();
  const T* gp = g.data();
  T* bp = momentum_buf.data();
  T dummy{};
#pragma omp parallel for schedule(static) if (n >= kParallelMin) firstprivate(dummy)
  for (int64_t i = 0; i < int64_t(n); ++i) sgd_update(pp[i], gp[i], use_buf ? bp[i] : dummy, h, first_step);
}

template <class T>
void adam_step(std::span<T> p, std::span<const T> g, std::span<T> exp_avg, std::span<T> exp_avg_sq,
               std::span<T> max_exp_avg_sq, const AdamStep& s) {
  const size_t n = p.size();
  const char* name = s.h.decoupled ? "adamw_step" : "adam_step";
  require_size(name, "grad", g, n);
  require_size(name, "exp_avg", exp_avg, n);
  require_size(name, "exp_avg_sq", exp_avg_sq, n);
  if (s.h.amsgrad) require_size(name, "max_exp_avg_sq", max_exp_avg_sq, n);
  if (s.step < 1) fail("{}: step must be >= 1 (got {}); use make_adam_step(h, step)", name, s.step);
  T* pp = p.data();
  const T* gp = g.data();
  T* mp = exp_avg.data();
  T* vp = exp_avg_sq.data();
  T* xp = max_exp_avg_sq.data();
  const bool ams = s.h.amsgrad;
  T dummy{};
#pragma omp parallel for schedule(static) if (n >= kParallelMin) firstprivate(dummy)
  for (int64_t i = 0; i < int64_t(n); ++i) adam_update(pp[i], gp[i], mp[i], vp[i], ams ? xp[i] : dummy, s);
}

template <class T>
void rmsprop_step(std::span<T> p, std::span<const T> g, std::span<T> square_avg, std::span<T> grad_avg,
                  std::span<T> momentum_buf, const RmspropHyper& h) {
  const size_t n = p.size();
  require_size("rmsprop_step", "grad", g, n);
  require_size("rmsprop_step", "square_avg", square_avg, n);
  if (h.centered) require_size("rmsprop_step", "grad_avg", grad_avg, n);
  const bool use_buf = h.momentum > 0.0;
  if (use_buf) require_size("rmsprop_step", "momentum_buf", momentum_buf, n);
  T* pp = p.data();
  const T* gp = g.data();
  T* sp = square_avg.data();
  T* ap = grad_avg.data();
  T* bp = momentum_buf.data();
  const bool centered = h.centered;
  T dummy_a{}, dummy_b{};
#pragma omp parallel for schedule(static) if (n >= kParallelMin) firstprivate(dummy_a, dummy_b)
  for (int64_t i = 0; i < int64_t(n); ++i)
    rmsprop_update(pp[i], gp[i], sp[i], centered ? ap[i] : dummy_a, use_buf ? bp[i] : dummy_b, h);
}

#define RTUNE_INSTANTIATE(T)                                                                              \
  template void sgd_step<T>(std::span<T>, std::span<const T>, std::span<T>, const SgdHyper&, bool);       \
  template void adam_step<T>(std::span<T>, std::span<const T>, std::span<T>, std::span<T>, std::span<T>,  \
                             const AdamStep&);                                                            \
  template void rmsprop_step<T>(std::span<T>, std::span<const T>, std::span<T>, std::span<T>,              \
                                std::span<T>, const RmspropHyper&);
RTUNE_INSTANTIATE(float)
RTUNE_INSTANTIATE(double)
#undef RTUNE_INSTANTIATE

}  // namespace rtune::optim
