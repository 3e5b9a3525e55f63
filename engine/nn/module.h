// Modules in the torch.nn style: parameters and buffers registered under torchvision's state_dict
// names, recursive train/eval, device and dtype moves, and requires_grad control for freezing.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>
#include "engine/functional.h"
#include "engine/random_tensor.h"
#include "engine/tensor.h"
#include "kernels/op_args.h"

namespace rtune::nn {

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Dotted names exactly as torch's state_dict() lists them (parameters and buffers in registration order).
  std::vector<std::pair<std::string, Tensor*>> named_parameters();
  std::vector<std::pair<std::string, Tensor*>> named_buffers();
  std::vector<std::pair<std::string, Tensor*>> state_dict();  // parameters then buffers, per module, in order
  std::vector<std::pair<std::string, Module*>> named_modules(const std::string& prefix = "");

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void to(Device d);
  void to(DType t);  // floating parameters and buffers only (num_batches_tracked stays int64)

 protected:
  Tensor& register_parameter(const std::string& name, Tensor& slot, Tensor value);
  Tensor& register_buffer(const std::string& name, Tensor& slot, Tensor value);
  template <class M> std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }
  bool training_ = true;

 private:
  void collect(const std::string& prefix, bool params, bool buffers, std::vector<std::pair<std::string, Tensor*>>& out);
  std::vector<std::pair<std::string, Tensor*>> params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

class Conv2d : public Module {
 public:
  Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, bool bias, Rng& rng);
  Tensor forward(const Tensor& x);
  Tensor weight, bias;
  kernels::Conv2dArgs args;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, double eps = 1e-5, double momentum = 0.1);
  Tensor forward(const Tensor& x);  // train: batch stats + running update; eval: running stats
  // relu(forward(x) + residual) (residual may be undefined): with batch statistics on one rank, the
  // batch norm, add and ReLU in one forward pass, ReLU's mask read by the backward (batch_norm_relu).
  Tensor forward_relu(const Tensor& x, const Tensor& residual = Tensor());
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  double eps, momentum;
  // When true the layer normalises with running statistics even in train mode and never updates them
  // (the "frozen BN" policy for a frozen backbone).
  bool use_running_stats = false;
  // Set (data-parallel --sync-bn): batch statistics over every rank, summed by this (sync_batch_norm).
  RankSum sync_ranks;
  // When false, conv_bn() never folds this layer into its convolution (tests compare both paths).
  bool allow_fold = true;

 private:
  void count_batch();  // num_batches_tracked += 1 after a batch-statistics pass
};

// conv → bn as torch computes it, bn(conv(x)). When no gradient reaches the pair's weights (frozen, or
// any layer under NoGradGuard: inference, validation) and the layer normalises with
// its running statistics (bn_foldable), it runs as ONE convolution instead: W' = W·s and
// b' = β + (b − mean)·s per output channel, s = γ/√(var+ε), which saves the batch-norm pass over the
// activations (PyTorch eager does not fold). W' and b' are computed afresh on every call, from the
// tensors as they are now, with no gradient (constants): they cannot go stale after a phase change,
// a load, .to() or train()/eval(). The gradient w.r.t. x (a frozen pair after a trainable layer) is
// conv2d's input gradient with W', which equals bn∘conv's. Otherwise: exactly bn.forward(conv.forward(x)).
Tensor conv_bn(Conv2d& conv, BatchNorm2d& bn, const Tensor& x);
// relu(conv_bn(conv, bn, x)) and relu(conv_bn(conv, bn, x) + residual) (a ResNet block's two ends). When
// the pair folds and nothing needs a gradient (inference, validation, a frozen backbone under
// NoGradGuard), ONE convolution whose epilogue adds and clamps in its own pass (kernels::
// conv2d_forward_fused: oneDNN post-ops on the channels-last CPU path): a frozen block costs its
// convolutions and nothing else. A trained pair: the convolution, then bn.forward_relu (batch norm, add
// and ReLU in one pass). The same values as torch's ops one by one (up to the order of the float32 sum
// where oneDNN fuses: kernels::conv2d_forward_fused).
Tensor conv_bn_relu(Conv2d& conv, BatchNorm2d& bn, const Tensor& x);
Tensor conv_bn_add_relu(Conv2d& conv, BatchNorm2d& bn, const Tensor& x, const Tensor& residual);
// True when conv_bn() folds: weight/bias of both layers need no gradient (needs_grad false: frozen, or
// under NoGradGuard) and bn uses running statistics
// (eval mode, or use_running_stats), allow_fold is set, and the shapes pair up.
bool bn_foldable(const Conv2d& conv, const BatchNorm2d& bn);

class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias, Rng& rng);
  void reset_parameters(Rng& rng);  // nn.Linear's init: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias
  Tensor forward(const Tensor& x);
  Tensor weight, bias;
};

}  // namespace rtune::nn
