// The CPU backend (Eigen + OpenMP): same signatures as kernels/ops.h, which documents each op.
#pragma once
#include "kernels/ops.h"

namespace rtune::cpu {
using kernels::Conv2dArgs;
using kernels::Pool2dArgs;
using kernels::Reduction;
void copy(const Tensor& src, Tensor& dst);
void fill(Tensor& t, double value);
void add(const Tensor& a, const Tensor& b, Tensor& y);
void sub(const Tensor& a, const Tensor& b, Tensor& y);
void mul(const Tensor& a, const Tensor& b, Tensor& y);
void add_(Tensor& a, const Tensor& b);
void scale(const Tensor& x, double s, Tensor& y);
void add_scalar(const Tensor& x, double s, Tensor& y);
void inv_sqrt_add(const Tensor& x, double s, Tensor& y);
void relu_forward(const Tensor& x, Tensor& y);
void relu_backward(const Tensor& gy, const Tensor& y, Tensor& gx);
void add_relu_forward(const Tensor& a, const Tensor& b, Tensor& y);
void normalize_images(const Tensor& images, const std::array<float, 3>& mean, const std::array<float, 3>& stddev,
                      Tensor& y);
void sum_all(const Tensor& x, Tensor& out);
Tensor sum_to(const Tensor& x, const Shape& shape);
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dArgs& a, Tensor& y);
// The façade's conv2d_forward_fused where oneDNN can fuse the epilogue; false (nothing done) elsewhere.
bool conv2d_forward_fused(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& residual, bool relu,
                          const Conv2dArgs& a, Tensor& y);
void conv2d_backward_input(const Tensor& gy, const Tensor& w, const Conv2dArgs& a, Tensor& gx);
void conv2d_backward_weight(const Tensor& gy, const Tensor& x, const Conv2dArgs& a, Tensor& gw);
void conv2d_backward_bias(const Tensor& gy, Tensor& gb);
void batch_norm_forward_train(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                              Tensor& running_var, double momentum, double eps, Tensor& y, Tensor& save_mean,
                              Tensor& save_invstd,
                              const Tensor& residual = Tensor(), bool relu = false);
void batch_norm_forward_eval(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                             const Tensor& running_var, double eps, Tensor& y);
void batch_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& weight, const Tensor& mean,
                         const Tensor& invstd, bool training, Tensor& gx, Tensor& gw, Tensor& gb, const Tensor& relu_out = Tensor());
void batch_norm_channel_sums(const Tensor& x, Tensor& sums);
void batch_norm_normalize(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& stats, Tensor& y);
void batch_norm_backward_sums(const Tensor& gy, const Tensor& x, const Tensor& mean, const Tensor& invstd, Tensor& sums);
void batch_norm_backward_input_from_sums(const Tensor& gy, const Tensor& x, const Tensor& weight, const Tensor& mean,
                                         const Tensor& invstd, const Tensor& grad_sums, double count, Tensor& gx);
void max_pool2d_forward(const Tensor& x, const Pool2dArgs& a, Tensor& y, Tensor& indices);
void max_pool2d_backward(const Tensor& gy, const Tensor& indices, Tensor& gx);
void adaptive_avg_pool2d_forward(const Tensor& x, Tensor& y);
void adaptive_avg_pool2d_backward(const Tensor& gy, Tensor& gx);
void linear_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y);
void linear_backward_input(const Tensor& gy, const Tensor& w, Tensor& gx);
void linear_backward_weight(const Tensor& gy, const Tensor& x, Tensor& gw);
void linear_backward_bias(const Tensor& gy, Tensor& gb);
void softmax_forward(const Tensor& x, Tensor& y);
void softmax_backward(const Tensor& gy, const Tensor& y, Tensor& gx);
void log_softmax_forward(const Tensor& x, Tensor& y);
void log_softmax_backward(const Tensor& gy, const Tensor& y, Tensor& gx);
void cross_entropy_forward(const Tensor& logits, const Tensor& target, double label_smoothing, Reduction r,
                           Tensor& loss, Tensor& log_probs);
void cross_entropy_backward(const Tensor& gloss, const Tensor& log_probs, const Tensor& target,
                            double label_smoothing, Reduction r, Tensor& glogits);
void sgd_update_many(const std::vector<kernels::SgdSlot>& slots);
void adam_update_many(const std::vector<kernels::AdamSlot>& slots);
void rmsprop_update_many(const std::vector<kernels::RmspropSlot>& slots);
std::vector<double> norms(const std::vector<Tensor>& xs, double norm_type);
void clamp(const Tensor& x, double lo, double hi, Tensor& y);
}  // namespace rtune::cpu
