// CPU batch norm on channels-last (NHWC) tensors: the same ops and formulas as batch_norm.cpp's NCHW
// kernels, over M = N·H·W rows of C contiguous channels, so a channels-last network (CPU training on
// oneDNN) never copies its activations into NCHW and back around a batch norm. Called by batch_norm.cpp
// when its input is strictly channels-last (cpu_util.h); every other tensor is taken or made channels-last to match.
#pragma once
#include "engine/tensor.h"

namespace rtune::cpu::nhwc {

void batch_norm_forward_train(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                              Tensor& running_var, double momentum, double eps, Tensor& y, Tensor& save_mean,
                              Tensor& save_invstd, const Tensor& residual, bool relu);
void batch_norm_forward_eval(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                             const Tensor& running_var, double eps, Tensor& y);
void batch_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& weight, const Tensor& mean,
                         const Tensor& invstd, bool training, Tensor& gx, Tensor& gw, Tensor& gb, const Tensor& relu_out);
void batch_norm_channel_sums(const Tensor& x, Tensor& sums);
void batch_norm_normalize(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& stats, Tensor& y);
void batch_norm_backward_sums(const Tensor& gy, const Tensor& x, const Tensor& mean, const Tensor& invstd, Tensor& sums);
void batch_norm_backward_input_from_sums(const Tensor& gy, const Tensor& x, const Tensor& weight, const Tensor& mean,
                                         const Tensor& invstd, const Tensor& grad_sums, double count, Tensor& gx);

}  // namespace rtune::cpu::nhwc
