// Differentiable ops (torch.nn.functional equivalents). Each computes through the kernels/ façade and
// records one autograd node with its gradient rule; the rules live in functional.cpp, one per op, and
// are shared by every backend. Inputs that do not need a gradient get none computed.
#pragma once
#include <functional>
#include <span>
#include "engine/tensor.h"
#include "kernels/op_args.h"

namespace rtune {

using kernels::Conv2dArgs;
using kernels::Pool2dArgs;
using kernels::Reduction;

// x converted to `dtype` and laid out in `fmt` (channels_last applies to 4-d tensors only), as torch's
// x.to(dtype, memory_format=fmt); the gradient flows back converted to x's dtype and layout. Returns x
// itself when it already has both.
Tensor cast(const Tensor& x, DType dtype, MemoryFormat fmt = MemoryFormat::contiguous);

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dArgs& a);
// relu?(conv2d(x, w, bias) + residual) for inference (kernels::conv2d_forward_fused: one pass on the
// oneDNN CPU with channels-last tensors). Records no gradient, so nothing it reads may need one.
Tensor conv2d_fused(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& residual, bool relu,
                    const Conv2dArgs& a);
// Batch norm over channel dim 1. Training: batch statistics, running stats updated in place
// (when defined). Eval: running statistics.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                  Tensor& running_var, bool training, double momentum, double eps);
// relu(batch_norm(x, …, training = true) + residual) (residual may be undefined: relu(batch_norm(…)))
// in one pass forward, and ReLU's mask read inside the batch norm's backward pass (where the residual
// needs no gradient of its own): a trained ResNet block's BN+ReLU and BN+add+ReLU. Values and gradients:
// the separate ops', bit for bit.
Tensor batch_norm_relu(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                       Tensor& running_var, double momentum, double eps, const Tensor& residual = Tensor());
// Training-mode batch norm over every data-parallel rank's batch (torch.nn.SyncBatchNorm; --sync-bn):
// `all_ranks_sum` sums a host buffer over the ranks in place (the identity with one rank), and every
// rank calls it in the same order. Forward: x is normalised with the mean and biased variance of all
// ranks' N·H·W values; the running statistics move by `momentum` with their unbiased variance. Backward:
// dx uses Σgy and Σgy·x̂ of all ranks; weight and bias get this rank's sums (the gradient average
// across ranks completes them, as DDP does for SyncBatchNorm). float32/float64 N×C×H×W on the CPU or a
// CUDA device; on CUDA each layer costs one device->host copy of its sums in forward and one in backward.
using RankSum = std::function<void(std::span<double>)>;
Tensor sync_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                       Tensor& running_var, double momentum, double eps, const RankSum& all_ranks_sum);
Tensor relu(const Tensor& x);
Tensor max_pool2d(const Tensor& x, const Pool2dArgs& a);
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias);

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, double s);
Tensor sum(const Tensor& x);   // 0-d
Tensor mean(const Tensor& x);  // 0-d
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator*(const Tensor& a, double s) { return mul(a, s); }

Tensor softmax(const Tensor& x);      // over dim 1 of N×C
Tensor log_softmax(const Tensor& x);  // over dim 1 of N×C
Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing = 0.0,
                     Reduction r = Reduction::mean);

// relu(a + b) as one op and one autograd node (a ResNet block's `relu(out + identity)`): same values
// as relu(add(a, b)); the backward computes relu_backward once and hands it to both inputs.
Tensor add_relu(const Tensor& a, const Tensor& b);

}  // namespace rtune
