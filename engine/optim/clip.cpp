// torch.nn.utils.clip_grad_norm_ / clip_grad_value_ on CPU spans (see clip.h for the rules matched).
#include "engine/optim/clip.h"

#include <cmath>
#include <vector>

#include "engine/error.h"

namespace rtune::optim {
namespace {

void check_norm_type(const char* op, double norm_type) {
  if (!(norm_type > 0.0)) fail("{}: norm_type must be > 0 or inf, got {}", op, norm_type);
}

template <class T>
double norm_impl(std::span<const T> g, double p) {
  if (std::isinf(p)) {
    double m = 0.0;
    for (T x : g) {
      const double a = std::abs(double(x));
      if (a != a) return a;  // NaN propagates like torch's max
      m = a > m ? a : m;
    }
    return m;
  }
  double s = 0.0;
  if (p == 2.0) {
    for (T x : g) s += double(x) * double(x);
    return std::sqrt(s);
  }
  if (p == 1.0) {
    for (T x : g) s += std::abs(double(x));
    return s;
  }
  for (T x : g) s += std::pow(std::abs(double(x)), p);
  return std::pow(s, 1.0 / p);
}

template <class T>
double clip_norm_impl(std::span<const std::span<T>> grads, double max_norm, double norm_type,
                      bool error_if_nonfinite) {
  check_norm_type("clip_grad_norm_", norm_type);
  if (!(max_norm >= 0.0)) fail("clip_grad_norm_: max_norm must be >= 0, got {}", max_norm);
  if (grads.empty()) return 0.0;
  std::vector<double> norms;
  norms.reserve(grads.size());
  // Each per-tensor norm and the total are tensors of the gradient dtype in PyTorch: round to T.
  for (auto g : grads) norms.push_back(double(T(norm_impl<T>(g, norm_type))));
  const double total = double(T(combine_norms(norms, norm_type)));
  if (error_if_nonfinite && !std::isfinite(total))
    fail("clip_grad_norm_: the total norm of order {} of the gradients is {}, so it cannot be clipped",
         norm_type, total);
  // clip_coef = max_norm / (total_norm + 1e-6), in T like PyTorch's 0-dim tensor arithmetic.
  T coef = T(max_norm) / (T(total) + T(1e-6));
  if (coef > T(1)) coef = T(1);
  for (auto g : grads)
    for (T& x : g) x = x * coef;
  return total;
}

template <class T>
void clip_value_impl(std::span<const std::span<T>> grads, double clip_value) {
  if (!(clip_value >= 0.0)) fail("clip_grad_value_: clip_value must be >= 0, got {}", clip_value);
  const T hi = T(clip_value), lo = T(-clip_value);
  for (auto g : grads)
    for (T& x : g) x = x < lo ? lo : (x > hi ? hi : x);  // NaN compares false: stays NaN
}

}  // namespace

double grad_norm(std::span<const float> g, double norm_type) {
  check_norm_type("grad_norm", norm_type);
  return norm_impl<float>(g, norm_type);
}
double grad_norm(std::span<const double> g, double norm_type) {
  check_norm_type("grad_norm", norm_type);
  return norm_impl<double>(g, norm_type);
}

double combine_norms(std::span<const double> norms, double norm_type) {
  check_norm_type("combine_norms", norm_type);
  return norm_impl<double>(norms, norm_type);
}

double clip_coefficient(double total_norm, double max_norm) {
  const double c = max_norm / (total_norm + 1e-6);
  return c > 1.0 ? 1.0 : c;
}

double clip_grad_norm_(std::span<const std::span<float>> grads, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  return clip_norm_impl<float>(grads, max_norm, norm_type, error_if_nonfinite);
}
double clip_grad_norm_(std::span<const std::span<double>> grads, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  return clip_norm_impl<double>(grads, max_norm, norm_type, error_if_nonfinite);
}

void clip_grad_value_(std::span<const std::span<float>> grads, double clip_value) {
  clip_value_impl<float>(grads, clip_value);
}
void clip_grad_value_(std::span<const std::span<double>> grads, double clip_value) {
  clip_value_impl<double>(grads, clip_value);
}

}  // namespace rtune::optim
