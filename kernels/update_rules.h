// Per-element optimizer update rules matching PyTorch's single-tensor (foreach=False) paths of
// torch.optim.SGD, Adam, AdamW and RMSprop (torch 2.11), operation for operation, so a float64 run
// reproduces PyTorch to rounding. Hyper-parameters are doubles (Python floats in PyTorch) and are cast
// to the element type T exactly where PyTorch casts a Python scalar to the tensor dtype.
//
// The rules are plain inline functions usable from host loops and from CUDA kernels (RTUNE_HD); this
// header includes no CUDA header. They are the only place an optimizer's or clipping's arithmetic is
// written: kernels/cpu/optim.cpp loops over them, kernels/cuda/optim.cu runs them in kernels.
#pragma once
#include <cmath>
#include <cstdint>

#ifndef RTUNE_HD
#ifdef __CUDACC__
#define RTUNE_HD __host__ __device__
#else
#define RTUNE_HD
#endif
#endif

namespace rtune::optim {

// ---- element helpers spelling out PyTorch's CPU kernels -------------------------------------------

// torch.lerp(self, end, w): the two-sided form keeps it exact at w = 0 and w = 1.
template <class T>
RTUNE_HD inline T lerp(T self, T end, T w) {
  return (w < T(0.5) && w > T(-0.5)) ? self + w * (end - self) : end - (end - self) * (T(1) - w);
}

// torch.maximum: NaN in either operand propagates.
template <class T>
RTUNE_HD inline T maximum(T a, T b) {
  if (a != a) return a;
  if (b != b) return b;
  return a > b ? a : b;
}

template <class T>
RTUNE_HD inline T sqrt_(T x) {
  using std::sqrt;
  return sqrt(x);
}

// ---- SGD ---------------------------------------------------------------------------------------------

struct SgdHyper {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool maximize = false;
};

// One SGD element update. `first_step` is PyTorch's "momentum_buffer is None": the buffer is set to
// the (decayed) gradient instead of being blended. `buf` is untouched when momentum == 0.
template <class T>
RTUNE_HD inline void sgd_update(T& p, T g, T& buf, const SgdHyper& h, bool first_step) {
  if (h.maximize) g = -g;
  if (h.weight_decay != 0.0) g = g + T(h.weight_decay) * p;  // grad.add(param, alpha=wd)
  if (h.momentum != 0.0) {
    if (first_step) buf = g;
    else buf = buf * T(h.momentum) + T(1.0 - h.dampening) * g;  // buf.mul_(m).add_(g, alpha=1-d)
    g = h.nesterov ? g + T(h.momentum) * buf : buf;
  }
  p = p + T(-h.lr) * g;  // param.add_(grad, alpha=-lr)
}

// ---- Adam / AdamW ------------------------------------------------------------------------------------

struct AdamHyper {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
  bool decoupled = false;  // AdamW: param *= 1 - lr*wd instead of grad += wd*param
  bool maximize = false;
};

// Hyper-parameters plus the per-step scalars PyTorch computes in Python floats.
struct AdamStep {
  AdamHyper h;
  int64_t step = 0;                   // 1-based step count after the increment (0: not made yet)
  double step_size = 0.0;             // lr / (1 - beta1^step)
  double bias_correction2_sqrt = 0.0; // (1 - beta2^step)^0.5
};

// The per-step scalars for step number `step` (1 for the first update).
inline AdamStep make_adam_step(const AdamHyper& h, int64_t step) {
  AdamStep s;
  s.h = h;
  s.step = step;
  const double bias_correction1 = 1.0 - std::pow(h.beta1, double(step));
  const double bias_correction2 = 1.0 - std::pow(h.beta2, double(step));
  s.step_size = h.lr / bias_correction1;
  s.bias_correction2_sqrt = std::pow(bias_correction2, 0.5);
  return s;
}

// One Adam/AdamW element update: m, v are exp_avg, exp_avg_sq; vmax (max_exp_avg_sq) is only read and
// written when amsgrad. All state starts at zero.
template <class T>
RTUNE_HD inline void adam_update(T& p, T g, T& m, T& v, T& vmax, const AdamStep& s) {
  const AdamHyper& h = s.h;
  if (h.maximize) g = -g;
  if (h.weight_decay != 0.0) {
    if (h.decoupled) p = p * T(1.0 - h.lr * h.weight_decay);
    else g = g + T(h.weight_decay) * p;
  }
  m = lerp(m, g, T(1.0 - h.beta1));
  v = v * T(h.beta2) + T(1.0 - h.beta2) * g * g;  // mul_(b2).addcmul_(g, g, value=1-b2)
  T denom;
  if (h.amsgrad) {
    vmax = maximum(vmax, v);
    denom = sqrt_(vmax) / T(s.bias_correction2_sqrt) + T(h.eps);
  } else {
    denom = sqrt_(v) / T(s.bias_correction2_sqrt) + T(h.eps);
  }
  p = p + T(-s.step_size) * m / denom;  // addcdiv_: self + value * t1 / t2
}

// ---- RMSprop -----------------------------------------------------------------------------------------

struct RmspropHyper {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;
  bool maximize = false;
};

// One RMSprop element update: square_avg always; grad_avg only when centered; buf only when
// momentum > 0. All state starts at zero (PyTorch zero-initialises every RMSprop buffer).
template <class T>
RTUNE_HD inline void rmsprop_update(T& p, T g, T& square_avg, T& grad_avg, T& buf, const RmspropHyper& h) {
  if (h.maximize) g = -g;
  if (h.weight_decay != 0.0) g = g + T(h.weight_decay) * p;
  square_avg = square_avg * T(h.alpha) + T(1.0 - h.alpha) * g * g;
  T avg;
  if (h.centered) {
    grad_avg = lerp(grad_avg, g, T(1.0 - h.alpha));
    avg = sqrt_(square_avg + T(-1) * grad_avg * grad_avg);  // addcmul(ga, ga, value=-1).sqrt_()
  } else {
    avg = sqrt_(square_avg);
  }
  avg = avg + T(h.eps);
  if (h.momentum > 0.0) {
    buf = buf * T(h.momentum) + T(1) * g / avg;  // mul_(m).addcdiv_(g, avg)
    p = p + T(-h.lr) * buf;
  } else {
    p = p + T(-h.lr) * g / avg;
  }
}

// ---- clip_grad_norm_ / clip_grad_value_ (torch.nn.utils, torch 2.11) -------------------------------
// The total norm is the p-norm of the per-tensor p-norms, each a tensor of the gradient dtype T (so
// rounded to T); the scale is clamp(max_norm / (total + 1e-6), max=1) in T, applied to every gradient
// (also when it is 1); value clipping is clamp(-c, c) with NaN kept. The CPU loop (kernels/cpu/optim.cpp,
// engine/optim/optimizer.cpp) and the CUDA kernels (kernels/cuda/optim.cu) all use these rules.

// How a p-norm accumulates: 0 for p = 2, 1 for p = 1, 2 for p = inf, 3 for any other p > 0.
RTUNE_HD inline int norm_kind(double p) { return p == 2.0 ? 0 : p == 1.0 ? 1 : (p > 1.7976931348623157e308 ? 2 : 3); }

// One element added to a p-norm's accumulator (double): squares, absolute values, |x|^p, or the running
// maximum, where a NaN element makes the norm NaN (torch's max).
RTUNE_HD inline double norm_add(double acc, double x, int kind, double p) {
  using std::pow;
  const double a = x < 0 ? -x : x;
  if (kind == 0) return acc + x * x;
  if (kind == 1) return acc + a;
  if (kind == 2) return (acc != acc || a != a) ? (a != a ? a : acc) : (a > acc ? a : acc);
  return acc + pow(a, p);
}
// The p-norm from its accumulator.
RTUNE_HD inline double norm_finish(double acc, int kind, double p) {
  using std::pow;
  using std::sqrt;
  if (kind == 0) return sqrt(acc);
  if (kind == 3) return pow(acc, 1.0 / p);
  return acc;
}

// The clip coefficient from the total norm (already rounded to T): clamp(max_norm / (total + 1e-6), max=1)
// in T, as PyTorch's 0-dim tensor arithmetic. A NaN total gives NaN.
template <class T>
RTUNE_HD inline T clip_coef(double total, double max_norm) {
  T c = T(max_norm) / (T(total) + T(1e-6));
  return c > T(1) ? T(1) : c;
}

// clamp(x, lo, hi) with NaN kept (it compares false both ways).
template <class T>
RTUNE_HD inline T clamp_value(T x, T lo, T hi) {
  return x < lo ? lo : (x > hi ? hi : x);
}

}  // namespace rtune::optim
