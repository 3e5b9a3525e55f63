#include "engine/nn/module.h"
#include <cmath>
#include "engine/autograd.h"
#include "engine/functional.h"
#include "engine/nn/autocast.h"
#include "kernels/ops.h"

namespace rtune::nn {

Tensor& Module::register_parameter(const std::string& name, Tensor& slot, Tensor value) {
  slot = std::move(value);
  if (slot.defined() && is_floating(slot.dtype())) slot.set_requires_grad(true);
  params_.emplace_back(name, &slot);
  return slot;
}

Tensor& Module::register_buffer(const std::string& name, Tensor& slot, Tensor value) {
  slot = std::move(value);
  buffers_.emplace_back(name, &slot);
  return slot;
}

void Module::collect(const std::string& prefix, bool params, bool buffers,
                     std::vector<std::pair<std::string, Tensor*>>& out) {
  if (params)
    for (auto& [n, t] : params_)
      if (t->defined()) out.emplace_back(prefix + n, t);
  if (buffers)
    for (auto& [n, t] : buffers_)
      if (t->defined()) out.emplace_back(prefix + n, t);
  for (auto& [n, m] : children_) m->collect(prefix + n + ".", params, buffers, out);
}

std::vector<std::pair<std::string, Tensor*>> Module::named_parameters() {
  std::vector<std::pair<std::string, Tensor*>> out;
  collect("", true, false, out);
  return out;
}
std::vector<std::pair<std::string, Tensor*>> Module::named_buffers() {
  std::vector<std::pair<std::string, Tensor*>> out;
  collect("", false, true, out);
  return out;
}
std::vector<std::pair<std::string, Tensor*>> Module::state_dict() {
  std::vector<std::pair<std::string, Tensor*>> out;
  collect("", true, true, out);
  return out;
}
std::vector<std::pair<std::string, Module*>> Module::named_modules(const std::string& prefix) {
  std::vector<std::pair<std::string, Module*>> out{{prefix, this}};
  for (auto& [n, m] : children_) {
    auto sub = m->named_modules(prefix.empty() ? n : prefix + "." + n);
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, m] : children_) m->train(on);
}

namespace {
void replace(Tensor* slot, Tensor moved) {
  bool rg = slot->requires_grad();
  Tensor fresh = moved.detach();
  if (fresh.same(*slot)) return;
  if (rg) fresh.set_requires_grad(true);
  *slot = fresh;
}
}  // namespace

void Module::to(Device d) {
  NoGradGuard ng;
  // Integer buffers (BatchNorm's num_batches_tracked) stay on the host: they are counters the host
  // updates every step, and keeping them there avoids a device round trip per layer per step.
  for (auto& [n, t] : state_dict())
    if (is_floating(t->dtype())) replace(t, t->to(d));
}

void Module::to(DType dt) {
  NoGradGuard ng;
  for (auto& [n, t] : state_dict())
    if (is_floating(t->dtype())) replace(t, t->to(dt));
}

Conv2d::Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, bool has_bias, Rng& rng)
    : args{stride, stride, padding, padding, 1, 1} {
  // torchvision ResNet init: kaiming_normal_(mode="fan_out", nonlinearity="relu").
  double std = std::sqrt(2.0 / double(out * kernel * kernel));
  register_parameter("weight", weight, mul(randn({out, in, kernel, kernel}, rng), std).detach());
  if (has_bias) register_parameter("bias", bias, zeros({out}));
}

namespace {
kernels::Conv2dArgs args_in(const ComputeMode& m, kernels::Conv2dArgs a) {
  a.bf16_products = m.bf16_conv_products;
  return a;
}
}  // namespace

Tensor Conv2d::forward(const Tensor& x) {
  if (const ComputeMode* m = autocast_mode())
    return conv2d(m->in_mode(x), m->in_weight(weight), m->in_dtype(bias), args_in(*m, args));
  return conv2d(x, weight, bias, args);
}

BatchNorm2d::BatchNorm2d(int64_t c, double eps_, double momentum_) : eps(eps_), momentum(momentum_) {
  register_parameter("weight", weight, ones({c}));
  register_parameter("bias", bias, zeros({c}));
  register_buffer("running_mean", running_mean, zeros({c}));
  register_buffer("running_var", running_var, ones({c}));
  register_buffer("num_batches_tracked", num_batches_tracked, zeros({}, {DType::i64}));
}

void BatchNorm2d::count_batch() {
  // Bookkeeping only (momentum is fixed, as in PyTorch's default); the counter stays on the host.
  RTUNE_CHECK(num_batches_tracked.device().is_cpu(), "BatchNorm2d: num_batches_tracked must stay on the host");
  *num_batches_tracked.data<int64_t>() += 1;
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  bool batch_stats = training_ && !use_running_stats;
  Tensor y = batch_stats && sync_ranks ? sync_batch_norm(x, weight, bias, running_mean, running_var, momentum, eps, sync_ranks)
                                       : batch_norm(x, weight, bias, running_mean, running_var, batch_stats, momentum, eps);
  if (batch_stats) count_batch();
  return y;
}

Tensor BatchNorm2d::forward_relu(const Tensor& x, const Tensor& residual) {
  if (!training_ || use_running_stats || sync_ranks) {
    Tensor y = forward(x);
    return residual.defined() ? add_relu(y, residual) : relu(y);
  }
  Tensor y = batch_norm_relu(x, weight, bias, running_mean, running_var, momentum, eps, residual);
  count_batch();
  return y;
}

bool bn_foldable(const Conv2d& conv, const BatchNorm2d& bn) {
  // No gradient will be taken: frozen (requires_grad false), or any parameter under NoGradGuard
  // (inference, validation).
  auto frozen = [](const Tensor& t) { return !needs_grad(t); };
  return bn.allow_fold && (!bn.is_training() || bn.use_running_stats) && frozen(conv.weight) && frozen(conv.bias) &&
         frozen(bn.weight) && frozen(bn.bias) && bn.running_mean.defined() && bn.running_var.defined() &&
         conv.weight.dim() == 4 && bn.weight.defined() && bn.weight.numel() == conv.weight.size(0);
}

namespace {
// W' = W·s and b' = β + (b − mean)·s (conv_bn's fold), as constants.
std::pair<Tensor, Tensor> folded(const Conv2d& conv, const BatchNorm2d& bn) {
  // The fold is batch_norm in eval mode applied to the weights themselves, on their own device and in
  // their dtype (no host round trip): W viewed as 1×K×(C·R·S)×1 with mean 0 and shift 0 gives
  // W·s; the conv bias (0 when absent) viewed as 1×K×1×1 with the layer's mean and shift gives
  // (b − mean)·s + β. Each weight is rounded once, so a K-term dot product of W'·x differs from
  // s·(W·x) by about √K ulp (see tests/models/test_bn_folding.cpp).
  NoGradGuard ng;
  const Tensor& W = conv.weight;
  int64_t k = W.size(0);
  TensorOptions po{W.dtype(), W.device()};
  Tensor zero_mean = zeros({k}, po), zero_shift = zeros({k}, po);
  Tensor running_var = bn.running_var, running_mean = bn.running_mean;
  Tensor wv = W.contiguous().view({1, k, W.numel() / k, 1});
  Tensor w = batch_norm(wv, bn.weight, zero_shift, zero_mean, running_var, false, 0.0, bn.eps).contiguous().view(W.shape());
  Tensor b0 = conv.bias.defined() ? conv.bias.contiguous().view({1, k, 1, 1}) : zeros({1, k, 1, 1}, po);
  Tensor b = batch_norm(b0, bn.weight, bn.bias, running_mean, running_var, false, 0.0, bn.eps).contiguous().view({k});
  return {w, b};
}

// relu?(bn(conv(x)) + residual): one convolution with post-ops when the pair folds and nothing needs a
// gradient (inference, a frozen backbone), else the ops one by one as torch runs them.
Tensor conv_bn_epilogue(Conv2d& conv, BatchNorm2d& bn, const Tensor& x, const Tensor& residual, bool relu) {
  if (!bn_foldable(conv, bn) && relu) return bn.forward_relu(conv.forward(x), residual);
  if (!bn_foldable(conv, bn) || any_needs_grad({x, residual})) {
    Tensor y = conv_bn(conv, bn, x);
    if (residual.defined()) return relu ? add_relu(y, residual) : add(y, residual);
    return relu ? rtune::relu(y) : y;
  }
  auto [w, b] = folded(conv, bn);
  if (const ComputeMode* m = autocast_mode())
    return conv2d_fused(m->in_mode(x), m->in_weight(w), m->in_dtype(b), residual.defined() ? m->in_mode(residual) : Tensor(),
                        relu, args_in(*m, conv.args));
  return conv2d_fused(x, w, b, residual, relu, conv.args);
}
}  // namespace

Tensor conv_bn(Conv2d& conv, BatchNorm2d& bn, const Tensor& x) {
  if (!bn_foldable(conv, bn)) return bn.forward(conv.forward(x));
  auto [w, b] = folded(conv, bn);
  if (const ComputeMode* m = autocast_mode())
    return conv2d(m->in_mode(x), m->in_weight(w), m->in_dtype(b), args_in(*m, conv.args));
  return conv2d(x, w, b, conv.args);
}

Tensor conv_bn_relu(Conv2d& conv, BatchNorm2d& bn, const Tensor& x) { return conv_bn_epilogue(conv, bn, x, Tensor(), true); }

Tensor conv_bn_add_relu(Conv2d& conv, BatchNorm2d& bn, const Tensor& x, const Tensor& residual) {
  return conv_bn_epilogue(conv, bn, x, residual, true);
}

Linear::Linear(int64_t in, int64_t out, bool has_bias, Rng& rng) {
  register_parameter("weight", weight, zeros({out, in}));
  if (has_bias) register_parameter("bias", bias, zeros({out}));
  reset_parameters(rng);
}

void Linear::reset_parameters(Rng& rng) {
  NoGradGuard ng;
  double bound = 1.0 / std::sqrt(double(weight.size(1)));
  weight.copy_(uniform(weight.shape(), -bound, bound, rng, {weight.dtype()}).to(weight.device()));
  if (bias.defined()) bias.copy_(uniform(bias.shape(), -bound, bound, rng, {bias.dtype()}).to(bias.device()));
}

Tensor Linear::forward(const Tensor& x) {
  if (const ComputeMode* m = autocast_mode())
    return linear(m->in_dtype(x), m->in_dtype(weight), m->in_dtype(bias));
  return linear(x, weight, bias);
}

}  // namespace rtune::nn
