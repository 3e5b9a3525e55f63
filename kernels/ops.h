// The op façade: one declaration and contract per op. Each dispatches on the tensors' device to the
// cpu:: backend (Eigen, the numerical oracle) or the cuda:: backend. Outputs are preallocated by the
// caller with the documented shape; inputs of the "dense" ops may have any strides (they are made
// contiguous here), outputs are written densely. Nothing here records autograd: engine/functional.h does.
#pragma once
#include <array>
#include <memory>
#include "engine/tensor.h"
#include "kernels/update_rules.h"
#include "kernels/op_args.h"

namespace rtune::kernels {

// ----------------------------------------------------------------- devices
// Whether `d` computes in bfloat16 at speed: a CUDA device with compute capability >= 8.0, or a CPU with
// AVX512_BF16/AMX on the oneDNN backend (bf16 convolution products: kernels/cpu/backend.h native_bf16).
bool supports_bf16(Device d);
// Whether `d` computes fastest channels-last on the CPU: the oneDNN backend on AVX-512, whose convolutions
// (forward and both backwards) read and write NHWC in place (an NCHW tensor is reordered in and out around
// every one), while batch norm, ReLU, add and pooling have channels-last CPU kernels of their own. On
// AVX2, oneDNN's blocked-layout kernels behind the reorders are faster (cpu::onednn_prefers_nhwc).
bool channels_last_compute(Device d);
// CUDA devices this process can use (0 without the CUDA backend, a driver or a GPU).
int cuda_device_count();
// The CUDA caching allocator's counters (all zero on the CPU): bytes held by tensors now and at the
// peak since the last reset, and how many blocks came from cudaMalloc.
struct DeviceMemoryStats {
  size_t in_use_bytes = 0, peak_in_use_bytes = 0, cached_bytes = 0;
  uint64_t device_mallocs = 0;
};
DeviceMemoryStats device_memory_stats(Device d);
void reset_device_peak(Device d);
// Page-locked host memory (cudaMallocHost) for fast host->device copies; throws rtune::Error in a
// build without CUDA. pinned_free takes only what pinned_alloc returned.
void* pinned_alloc(size_t bytes);
void pinned_free(void* p);

// ----------------------------------------------------------------- transfers queued with the compute
// A point in a device's queued work the host can wait for (a CUDA event); on the CPU always reached.
class Fence {
 public:
  Fence() = default;
  explicit Fence(std::shared_ptr<void> event) : event_(std::move(event)) {}
  void wait() const;  // blocks until the device has done everything queued before the fence
 private:
  std::shared_ptr<void> event_;  // the backend's event, back to its pool when the last copy goes
};
// A fence after everything queued on `d` so far.
Fence fence(Device d);
// Queues a copy of dense CPU `src` into dense device `dst` (same shape, dtype and strides) behind the
// device's queued compute, without waiting for it. Pageable `src` may be reused at once; pinned `src`
// (kernels::pinned_alloc) is read by DMA later and must stay unchanged until a fence after the copy.
void upload(const Tensor& src, Tensor& dst);
// Queues a copy of dense device `src` into dense CPU `dst` (pinned for the host not to wait); `dst`
// holds the values once a fence after the copy is reached.
void download(const Tensor& src, Tensor& dst);

// ----------------------------------------------------------------- elementwise and copies
// copy: dst[i] = convert(src[i]); same shape and device, any strides and dtypes (u8/i64/f16/bf16/f32/f64).
void copy(const Tensor& src, Tensor& dst);
void fill(Tensor& t, double value);
// y = a + b, a - b, a * b: same shape, dtype and device; y dense (may alias a).
void add(const Tensor& a, const Tensor& b, Tensor& y);
void sub(const Tensor& a, const Tensor& b, Tensor& y);
void mul(const Tensor& a, const Tensor& b, Tensor& y);
void add_(Tensor& a, const Tensor& b);               // a += b in place (a dense)
void scale(const Tensor& x, double s, Tensor& y);    // y = s * x
void add_scalar(const Tensor& x, double s, Tensor& y);
// y = 1 / sqrt(x + s): the add in x's dtype (as add_scalar), the root and division in double, rounded once
// (batch norm's inverse standard deviation from running_var and eps).
void inv_sqrt_add(const Tensor& x, double s, Tensor& y);
// relu: y = max(x, 0); backward gx = gy where y > 0 (torch's threshold_backward on the output).
void relu_forward(const Tensor& x, Tensor& y);
void relu_backward(const Tensor& gy, const Tensor& y, Tensor& gx);
// add_relu: y = max(a + b, 0) in one pass (a ResNet block's residual `relu(out + identity)`); NaN -> 0
// as relu. a, b, y: same shape, dtype and device; a, b any strides, y dense (NCHW or channels-last).
// 16-bit floats compute in float. Backward is relu_backward(gy, y) handed to both inputs.
void add_relu_forward(const Tensor& a, const Tensor& b, Tensor& y);

// ----------------------------------------------------------------- input images
// normalize_images: torchvision's ToTensor + Normalize on a uint8 batch,
// y[n,c,h,w] = (float(images[n,c,h,w]) / 255 - mean[c]) / stddev[c], computed in float32 and then rounded
// (or, for f64, widened) to y's dtype. requires: images u8 {N, 3, H, W} dense channels-last (the
// loader's interleaved HWC bytes); y f32/f64/bf16/f16 {N, 3, H, W}, dense NCHW or channels-last, on
// the device of images.
void normalize_images(const Tensor& images, const std::array<float, 3>& mean, const std::array<float, 3>& stddev,
                      Tensor& y);

// ----------------------------------------------------------------- reductions
void sum_all(const Tensor& x, Tensor& out);  // out: 0-d, same dtype; accumulates in double
// Sums x over the dims broadcast to make it `shape` (autograd of expand/broadcast); returns a new tensor.
Tensor sum_to(const Tensor& x, const Shape& shape);

// ----------------------------------------------------------------- convolution (torch.nn.functional.conv2d)
// x: N×C×H×W, w: K×C×R×S -> N×K×Ho×Wo with Ho = (H + 2ph - dh(R-1) - 1)/sh + 1. Throws on bad shapes.
Shape conv2d_out_shape(const Shape& x, const Shape& w, const Conv2dArgs& a);
// y = x ⋆ w (+ bias[k]); bias may be undefined. a.inference: no backward will follow (may pick faster kernels).
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dArgs& a, Tensor& y);
// y = relu?(x ⋆ w + bias + residual): the forward with its epilogue, no backward (a.inference). residual
// (y's shape) and bias may be undefined; relu false skips the max. On the CPU's oneDNN with channels-last
// tensors the epilogue runs as post-ops in the convolution's own pass (a frozen, folded ResNet block then
// costs its convolutions alone); elsewhere conv2d_forward, then add_relu_forward / add / relu_forward on
// y in place. The same values up to the order of the float32 sum (the residual is one more term of it;
// oneDNN's AVX-512 kernels add it after the bias, as the separate ops do); oneDNN's ReLU is not held to
// relu_forward's NaN -> 0 (a NaN may come out as NaN).
void conv2d_forward_fused(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& residual, bool relu,
                          const Conv2dArgs& a, Tensor& y);
void conv2d_backward_input(const Tensor& gy, const Tensor& w, const Conv2dArgs& a, Tensor& gx);
void conv2d_backward_weight(const Tensor& gy, const Tensor& x, const Conv2dArgs& a, Tensor& gw);
void conv2d_backward_bias(const Tensor& gy, Tensor& gb);

// ----------------------------------------------------------------- batch norm (torch.nn.BatchNorm2d)
// Training: normalise with batch statistics over N,H,W; save_mean/save_invstd (C) get the batch mean
// and 1/sqrt(biased var + eps); running_mean/var (C, may be undefined) move by `momentum`, the variance
// with the unbiased estimate. weight/bias (C) may be undefined (affine=False).
void batch_norm_forward_train(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                              Tensor& running_var, double momentum, double eps, Tensor& y, Tensor& save_mean,
                              Tensor& save_invstd);
// Eval: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias.
void batch_norm_forward_eval(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                             const Tensor& running_var, double eps, Tensor& y);
// Gradients; mean/invstd are the saved batch stats (training) or running stats turned into invstd (eval).
// Any of gx, gw, gb may be undefined to skip that gradient.
void batch_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& weight, const Tensor& mean,
                         const Tensor& invstd, bool training, Tensor& gx, Tensor& gw, Tensor& gb);
// Training-mode batch norm with its ReLU (and the residual added before it, when defined) in the same
// pass: y = relu(bn(x) + residual), a ResNet block's BN+ReLU and BN+add+ReLU. The values are the
// separate ops' (bn rounded to the dtype, then add_relu_forward / relu_forward), bit for bit. The
// CPU fuses; CUDA runs batch_norm_forward_train, then the epilogue on y in place.
void batch_norm_relu_forward_train(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                                   Tensor& running_var, double momentum, double eps, const Tensor& residual, Tensor& y,
                                   Tensor& save_mean, Tensor& save_invstd);
// batch_norm_backward (training) of relu(bn(x)), given the ReLU's output y: the gradient reaching the
// batch norm is gy where y > 0, else 0 (relu_backward's values, bit for bit; the CPU reads the mask in
// the batch norm's own pass, CUDA runs relu_backward first).
void batch_norm_relu_backward(const Tensor& gy, const Tensor& y, const Tensor& x, const Tensor& weight,
                              const Tensor& mean, const Tensor& invstd, Tensor& gx, Tensor& gw, Tensor& gb);
// Synchronised batch norm (data-parallel --sync-bn; engine/functional.h sync_batch_norm) on CPU and CUDA
// ranks: the statistics and gradient sums of all ranks are summed (on the host) between these calls.
// requires: one device; x N×C×… float32/float64, any strides; gy, y, gx shaped like x, weight, bias,
// mean, invstd contiguous C-vectors, all in x's dtype; sums/stats contiguous float64 of 2C.
// sums (f64, 2C): this rank's per-channel Σx, then Σx², accumulated in double.
void batch_norm_channel_sums(const Tensor& x, Tensor& sums);
// y = (x − mean)·invstd·w + b with stats (f64, 2C: mean, then invstd), in double as the training kernel
// (a float32 shift b − mean·scale would lose digits when |mean| ≫ std).
void batch_norm_normalize(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& stats, Tensor& y);
// sums (f64, 2C): this rank's Σgy, then Σgy·x̂ with x̂ = (x − mean)·invstd (mean, invstd in x's dtype).
void batch_norm_backward_sums(const Tensor& gy, const Tensor& x, const Tensor& mean, const Tensor& invstd, Tensor& sums);
// Training-mode dx from all ranks' sums: dx = w·invstd·(gy − Σgy/count − x̂·Σ(gy·x̂)/count), x̂ = (x − mean)·invstd;
// grad_sums (f64, 2C): Σgy, then Σgy·x̂, over every rank's `count` values per channel.
void batch_norm_backward_input_from_sums(const Tensor& gy, const Tensor& x, const Tensor& weight, const Tensor& mean,
                                         const Tensor& invstd, const Tensor& grad_sums, double count, Tensor& gx);

// ----------------------------------------------------------------- pooling
Shape max_pool2d_out_shape(const Shape& x, const Pool2dArgs& a);  // floor mode, as torch's default
// indices (i64, shape of y): flat h*W+w of the max in each plane (torch's convention); first max wins.
void max_pool2d_forward(const Tensor& x, const Pool2dArgs& a, Tensor& y, Tensor& indices);
void max_pool2d_backward(const Tensor& gy, const Tensor& indices, Tensor& gx);
// Bins [floor(i*H/Ho), ceil((i+1)*H/Ho)) as torch.nn.AdaptiveAvgPool2d.
void adaptive_avg_pool2d_forward(const Tensor& x, Tensor& y);
void adaptive_avg_pool2d_backward(const Tensor& gy, Tensor& gx);

// ----------------------------------------------------------------- linear (torch.nn.functional.linear)
// x: N×I, w: O×I, bias: O (may be undefined) -> y: N×O = x wᵀ + b.
void linear_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y);
void linear_backward_input(const Tensor& gy, const Tensor& w, Tensor& gx);   // gx = gy w
void linear_backward_weight(const Tensor& gy, const Tensor& x, Tensor& gw);  // gw = gyᵀ x
void linear_backward_bias(const Tensor& gy, Tensor& gb);                     // gb = Σ_n gy

// ----------------------------------------------------------------- softmax and loss (over dim 1 of N×C)
void softmax_forward(const Tensor& x, Tensor& y);
void softmax_backward(const Tensor& gy, const Tensor& y, Tensor& gx);
void log_softmax_forward(const Tensor& x, Tensor& y);
void log_softmax_backward(const Tensor& gy, const Tensor& y, Tensor& gx);
// torch.nn.functional.cross_entropy with class-index targets (i64, N) and label smoothing ε:
// loss_n = (1-ε)(-logp[n, t_n]) + ε/C Σ_c -logp[n, c]; out: 0-d. log_probs (N×C) is written for backward.
void cross_entropy_forward(const Tensor& logits, const Tensor& target, double label_smoothing, Reduction r,
                           Tensor& loss, Tensor& log_probs);
void cross_entropy_backward(const Tensor& gloss, const Tensor& log_probs, const Tensor& target,
                            double label_smoothing, Reduction r, Tensor& glogits);

// ----------------------------------------------------------------- optimizer updates and clipping
// Fused updates of a list of parameters (op_args.h's slots), applying kernels/update_rules.h to
// every element: PyTorch's SGD / Adam / AdamW / RMSprop with each parameter's own hyper-parameters
// (on the CPU, bit-identical to one parameter at a time, as PyTorch's single-tensor path).
// requires: every tensor of the call on one device and of one dtype (f32 or f64); param and state dense
// and contiguous, state shaped as param; grad shaped as param (any strides). An empty list does nothing.
// The CPU backend loops over the parameters; the CUDA backend launches one kernel per
// cuda::k*TensorsPerLaunch parameters (multi-tensor apply), not one per parameter.
void sgd_update_many(const std::vector<SgdSlot>& slots);
void adam_update_many(const std::vector<AdamSlot>& slots);
void rmsprop_update_many(const std::vector<RmspropSlot>& slots);
// The p-norm (norm_type > 0 or infinity) of each tensor, accumulated in double by the norm rule of
// kernels/update_rules.h on every backend, returned to the host in one transfer. NaN propagates through the inf-norm.
std::vector<double> norms(const std::vector<Tensor>& xs, double norm_type);
// torch.nn.utils.clip_grad_norm_'s scaling without the host reading any norm (CUDA only: the CPU path
// is engine/optim's clip_grad_norm): per-tensor norms, the total and clip_coef = clamp(max_norm /
// (total + 1e-6), max=1), each rounded to the gradients' dtype as PyTorch's 0-dim tensors are, then
// every gradient scaled by clip_coef. Gradients dense, one dtype (f32/f64), on one CUDA device.
void clip_grad_norm_on_device(const std::vector<Tensor>& grads, double max_norm, double norm_type);
// y = clamp(x, lo, hi) elementwise (torch.clamp; NaN stays NaN); y dense, may alias x.
void clamp(const Tensor& x, double lo, double hi, Tensor& y);

}  // namespace rtune::kernels
