// conv2d on oneDNN, float32: the three computations of kernels/cpu/conv2d.cpp's Eigen path
// (torch.nn.functional.conv2d, groups=1) for NCHW and channels-last tensors, held to that oracle by
// tests/ops/test_conv2d.cpp. Chosen by kernels/cpu/backend.h; compiled only when oneDNN is found.
#pragma once
#include "kernels/ops.h"

namespace rtune::cpu::onednn {

using kernels::Conv2dArgs;

// requires: float32 tensors on the CPU, shaped as kernels/ops.h documents (the façade checked them);
// any strides (a tensor dense in neither NCHW nor channels-last is copied to NCHW first).
// ensures: the output holds the result in its own layout; a primitive is built once per shape,
// layout and argument set, and reused. Forward is a forward_inference primitive when a.inference.
// With a.bf16_products the inputs are rounded to bf16 by the reorders into oneDNN's layout and the
// products taken by its bf16 kernels (requires backend.h's onednn_bf16_kernels()); outputs stay f32.
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dArgs& a, Tensor& y);
// The forward with an epilogue in the same pass (oneDNN post-ops): y = conv(x, w) + bias, + residual
// when defined, then max(·, 0) when relu: forward_inference, no gradient. Runs only where y (and the
// residual) are channels-last (the residual is copied into y, and the convolution adds onto it) and where
// oneDNN runs the post-ops in the same implementation as the plain convolution (no slower kernel; the
// residual joins the float32 sum, see kernels/ops.h); returns false, having done nothing, elsewhere.
bool conv2d_forward_fused(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& residual, bool relu,
                          const Conv2dArgs& a, Tensor& y);
void conv2d_backward_input(const Tensor& gy, const Tensor& w, const Conv2dArgs& a, Tensor& gx);
void conv2d_backward_weight(const Tensor& gy, const Tensor& x, const Conv2dArgs& a, Tensor& gw);

}  // namespace rtune::cpu::onednn
