// The CUDA backend (cuDNN, cuBLAS and own kernels in kernels/cuda/*.cu): same signatures as kernels/ops.h,
// which documents each op, and as kernels/cpu/cpu_ops.h. Tensors are on the process's one GPU (allocator.h process_device()); every op runs on the
// backend stream (kernels/cuda/handles.h).
#pragma once
#include "kernels/ops.h"

namespace rtune::cuda {
using kernels::Conv2dArgs;
using kernels::Pool2dArgs;
using kernels::Reduction;
int device_count();  // 0 when there is no driver or no GPU (never throws)
bool supports_bf16(int device);  // compute capability >= 8.0; false when the device cannot be queried
void* pinned_alloc(size_t bytes);
void pinned_free(void* p);
std::shared_ptr<void> fence_record();  // an event recorded on the backend stream (kernels/cuda/transfer.cpp)
void fence_wait(void* event);
void upload(const Tensor& src, Tensor& dst);
void download(const Tensor& src, Tensor& dst);
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
void conv2d_backward_input(const Tensor& gy, const Tensor& w, const Conv2dArgs& a, Tensor& gx);
void conv2d_backward_weight(const Tensor& gy, const Tensor& x, const Conv2dArgs& a, Tensor& gw);
void conv2d_backward_bias(const Tensor& gy, Tensor& gb);
void batch_norm_forward_train(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                              Tensor& running_var, double momentum, double eps, Tensor& y, Tensor& save_mean,
                              Tensor& save_invstd);
void batch_norm_forward_eval(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                             const Tensor& running_var, double eps, Tensor& y);
void batch_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& weight, const Tensor& mean,
                         const Tensor& invstd, bool training, Tensor& gx, Tensor& gw, Tensor& gb);
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
// Parameters per kernel launch of the list updates: each launch's argument struct (pointers, sizes and
// per-parameter hyper-parameters of this many tensors) stays under 3 KB of the 4 KB kernel-parameter limit.
inline constexpr int kSgdTensorsPerLaunch = 36;
inline constexpr int kAdamTensorsPerLaunch = 24;
inline constexpr int kRmspropTensorsPerLaunch = 30;
std::vector<double> norms(const std::vector<Tensor>& xs, double norm_type);
void clip_grad_norm(const std::vector<Tensor>& grads, double max_norm, double norm_type);
void clamp(const Tensor& x, double lo, double hi, Tensor& y);
}  // namespace rtune::cuda
