// Batch norm's per-channel and per-element formulas, written once for both CPU layouts (batch_norm.cpp's
// NCHW kernels and batch_norm_nhwc.cpp's channels-last ones): the two differ only in how they walk the
// memory, so they give the same values (the tests hold one against the other). Statistics in double.
#pragma once
#include <cmath>
#include <cstdint>

namespace rtune::cpu::bn {

// y = x·scale + shift per channel.
struct Affine {
  double scale, shift;
};
template <class T> inline Affine affine(const T* weight, const T* bias, int64_t c, double mean, double invstd) {
  const double scale = (weight ? double(weight[c]) : 1.0) * invstd;
  return {scale, (bias ? double(bias[c]) : 0.0) - mean * scale};
}

// A training pass's channel from its mean and Σ(x − mean)² over M values: saves mean and invstd, updates
// the running statistics (the variance unbiased, as PyTorch), returns the affine map.
template <class T>
inline Affine finish_train_channel(int64_t c, double mean, double sq, int64_t M, double momentum, double eps,
                                   const T* weight, const T* bias, T* save_mean, T* save_invstd, T* running_mean,
                                   T* running_var) {
  const double invstd = 1.0 / std::sqrt(sq / double(M) + eps);
  save_mean[c] = T(mean);
  save_invstd[c] = T(invstd);
  if (running_mean) running_mean[c] = T((1 - momentum) * double(running_mean[c]) + momentum * mean);
  if (running_var) running_var[c] = T((1 - momentum) * double(running_var[c]) + momentum * sq / double(M - 1));
  return affine(weight, bias, c, mean, invstd);
}

// Eval mode's affine map in T, as PyTorch's CPU kernel computes it from the running statistics.
template <class T> struct AffineT {
  T scale, shift;
};
template <class T>
inline AffineT<T> eval_affine(const T* weight, const T* bias, const T* running_mean, const T* running_var, int64_t c,
                              double eps) {
  const T invstd = T(1) / std::sqrt(running_var[c] + T(eps));
  const T scale = (weight ? weight[c] : T(1)) * invstd;
  return {scale, (bias ? bias[c] : T(0)) - running_mean[c] * scale};
}

// The normalised value rounded to T, and the epilogue as add_relu_forward / relu_forward compute it (the
// residual added in T, then clamped): the separate ops' values, bit for bit.
template <class T> inline T normalised(T x, double scale, double shift) { return T(x * scale + shift); }
template <class T> inline T relu_of(T v) { return v > 0 ? v : T(0); }
template <class T> inline T add_then_relu(T v, T residual, bool relu) {
  const T s = T(v + residual);
  return relu ? relu_of(s) : s;
}

// Training's input gradient: dx = w·invstd/M · (M·g − Σg − x̂·Σ(g·x̂)), with k = w·invstd/M,
// mean_g = Σg/M, proj = Σ(g·x̂)/M.
template <class T>
inline T train_input_grad(T g, T x, double mean, double invstd, double k, int64_t M, double mean_g, double proj) {
  const double xhat = (x - mean) * invstd;
  return T(k * double(M) * (g - mean_g - xhat * proj));
}
// Eval mode's input gradient: g·w·invstd.
template <class T> inline T eval_input_grad(T g, double w, double invstd) { return T(g * w * invstd); }
// Sync-BN's input gradient from the all-reduced sums, k = w·invstd, mean_g and proj over the global count.
template <class T>
inline T input_grad_from_sums(T g, T x, double mean, double invstd, double k, double mean_g, double proj) {
  return T(k * (double(g) - mean_g - (double(x) - mean) * invstd * proj));
}

}  // namespace rtune::cpu::bn
