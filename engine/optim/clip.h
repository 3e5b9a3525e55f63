// Gradient clipping matching torch.nn.utils.clip_grad_norm_ and clip_grad_value_ (torch 2.11): the
// total norm is the p-norm of the per-tensor p-norms, the scale is clamp(max_norm / (total + 1e-6),
// max=1.0) applied to every gradient (also when it is 1), and value clipping is clamp(-c, c).
// The pieces (per-tensor norm, combining, coefficient) are exposed so a GPU path can compute the
// per-tensor norms itself and share the same combining rule.
#pragma once
#include <limits>
#include <span>

namespace rtune::optim {

inline constexpr double kInfNorm = std::numeric_limits<double>::infinity();

// p-norm of one gradient (norm_type > 0 or kInfNorm), accumulated in double.
double grad_norm(std::span<const float> g, double norm_type = 2.0);
double grad_norm(std::span<const double> g, double norm_type = 2.0);

// torch.linalg.vector_norm(torch.stack(norms), norm_type): the total norm from per-tensor norms.
double combine_norms(std::span<const double> norms, double norm_type = 2.0);

// clamp(max_norm / (total_norm + 1e-6), max=1.0), computed in double. NaN total gives NaN.
double clip_coefficient(double total_norm, double max_norm);

// Scales every gradient in place so the total norm is at most max_norm; returns the total norm before
// clipping. For float gradients the norm is rounded to float before the coefficient is formed, as
// PyTorch keeps it a float32 tensor. error_if_nonfinite: throw rtune::Error on a NaN/inf total instead
// of scaling by it. Empty `grads` returns 0 and changes nothing.
double clip_grad_norm_(std::span<const std::span<float>> grads, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);
double clip_grad_norm_(std::span<const std::span<double>> grads, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

// Clamps every element into [-clip_value, clip_value] in place; NaN stays NaN (torch.clamp).
void clip_grad_value_(std::span<const std::span<float>> grads, double clip_value);
void clip_grad_value_(std::span<const std::span<double>> grads, double clip_value);

}  // namespace rtune::optim
