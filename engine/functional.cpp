// Forward computations and gradient rules of every differentiable op.
#include "engine/functional.h"
#include <algorithm>
#include <cmath>
#include <tuple>
#include "engine/autograd.h"
#include "kernels/ops.h"

namespace rtune {

namespace {
using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;
Tensor maybe_detach(const Tensor& t) { return t.defined() ? t.detach() : Tensor(); }
TensorOptions like(const Tensor& t) { return {t.dtype(), t.device()}; }
}  // namespace

Tensor cast(const Tensor& x, DType dtype, MemoryFormat fmt) {
  if (x.dim() != 4) fmt = MemoryFormat::contiguous;
  if (x.dtype() == dtype && x.is_contiguous(fmt)) return x;
  Tensor y = empty(x.shape(), {dtype, x.device(), fmt});
  kernels::copy(x, y);
  const TensorOptions back{x.dtype(), x.device(), x.suggest_memory_format()};
  record("cast", {x}, y, [back](const Tensor& gy, const Needs&) {
    Tensor g = empty(gy.shape(), back);
    kernels::copy(gy, g);
    return Grads{g};
  });
  return y;
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dArgs& a) {
  Tensor y = empty(kernels::conv2d_out_shape(x.shape(), w.shape(), a), {x.dtype(), x.device(), x.suggest_memory_format()});
  Conv2dArgs fa = a;
  fa.inference = !any_needs_grad({x, w, bias});  // the same test record() makes: no backward, no training kernels
  kernels::conv2d_forward(x, w, bias, fa, y);
  // x is saved only when w needs a gradient, w only when x does: a frozen conv keeps nothing alive.
  Tensor xs = needs_grad(w) ? x.detach() : Tensor(), ws = needs_grad(x) ? w.detach() : Tensor();
  Shape x_shape = x.shape(), w_shape = w.shape();
  const MemoryFormat w_format = w.suggest_memory_format();
  record("conv2d", {x, w, bias}, y, [xs, ws, a, x_shape, w_shape, w_format](const Tensor& gy, const Needs& n) {
    Grads g(3);
    if (n[0]) {
      g[0] = empty(x_shape, {gy.dtype(), gy.device(), gy.suggest_memory_format()});
      kernels::conv2d_backward_input(gy, ws, a, g[0]);
    }
    if (n[1]) {
      g[1] = empty(w_shape, {gy.dtype(), gy.device(), w_format});  // the weight's layout: no copy back
      kernels::conv2d_backward_weight(gy, xs, a, g[1]);
    }
    if (n[2]) {
      g[2] = empty({w_shape[0]}, like(gy));
      kernels::conv2d_backward_bias(gy, g[2]);
    }
    return g;
  });
  return y;
}

Tensor conv2d_fused(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& residual, bool relu,
                    const Conv2dArgs& a) {
  RTUNE_CHECK(!any_needs_grad({x, w, bias, residual}), "conv2d_fused: forward only, but an input needs a gradient");
  Tensor y = empty(kernels::conv2d_out_shape(x.shape(), w.shape(), a), {x.dtype(), x.device(), x.suggest_memory_format()});
  Conv2dArgs fa = a;
  fa.inference = true;
  kernels::conv2d_forward_fused(x, w, bias, residual, relu, fa, y);
  return y;
}

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                  Tensor& running_var, bool training, double momentum, double eps) {
  Tensor y = empty_like(x);
  // Statistics in fp32 for bf16/f16 activations (as cuDNN and torch.autocast keep them), else x's dtype.
  const TensorOptions stats{x.dtype() == DType::f64 ? DType::f64 : DType::f32, x.device()};
  Tensor mean, invstd;
  if (training) {
    mean = empty({x.size(1)}, stats);
    invstd = empty({x.size(1)}, stats);
    kernels::batch_norm_forward_train(x, weight, bias, running_mean, running_var, momentum, eps, y, mean, invstd);
  } else {
    kernels::batch_norm_forward_eval(x, weight, bias, running_mean, running_var, eps, y);
    if (any_needs_grad({x, weight, bias})) {  // eval backward uses the running statistics
      mean = running_mean.detach();
      invstd = empty_like(running_var);
      kernels::inv_sqrt_add(running_var, eps, invstd);  // on the device: no host round trip
    }
  }
  Tensor xs = x.detach(), ws = maybe_detach(weight);
  record("batch_norm", {x, weight, bias}, y, [xs, ws, mean, invstd, training, stats](const Tensor& gy, const Needs& n) {
    Grads g(3);
    if (n[0]) g[0] = empty(xs.shape(), {gy.dtype(), gy.device(), gy.suggest_memory_format()});
    if (n[1]) g[1] = empty({xs.size(1)}, stats);  // the parameters' dtype: fp32 under bf16 autocast
    if (n[2]) g[2] = empty({xs.size(1)}, stats);
    kernels::batch_norm_backward(gy, xs, ws, mean, invstd, training, g[0], g[1], g[2]);
    return g;
  });
  return y;
}

Tensor batch_norm_relu(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                       Tensor& running_var, double momentum, double eps, const Tensor& residual) {
  Tensor y = empty_like(x);
  const TensorOptions stats{x.dtype() == DType::f64 ? DType::f64 : DType::f32, x.device()};
  Tensor mean = empty({x.size(1)}, stats), invstd = empty({x.size(1)}, stats);
  kernels::batch_norm_relu_forward_train(x, weight, bias, running_mean, running_var, momentum, eps, residual, y, mean,
                                         invstd);
  Tensor xs = x.detach(), ws = maybe_detach(weight), ys = y.detach();
  record("batch_norm_relu", {x, weight, bias, residual}, y,
         [xs, ws, ys, mean, invstd, stats](const Tensor& gy, const Needs& n) {
           Grads g(4);
           if (n[0]) g[0] = empty(xs.shape(), {gy.dtype(), gy.device(), gy.suggest_memory_format()});
           if (n[1]) g[1] = empty({xs.size(1)}, stats);
           if (n[2]) g[2] = empty({xs.size(1)}, stats);
           if (n[3]) {
             // The residual's gradient is the masked gy itself: made once, it feeds the batch norm too.
             g[3] = empty(xs.shape(), {gy.dtype(), gy.device(), gy.suggest_memory_format()});
             kernels::relu_backward(gy, ys, g[3]);
             if (n[0] || n[1] || n[2]) kernels::batch_norm_backward(g[3], xs, ws, mean, invstd, true, g[0], g[1], g[2]);
           } else if (n[0] || n[1] || n[2]) {
             kernels::batch_norm_relu_backward(gy, ys, xs, ws, mean, invstd, g[0], g[1], g[2]);  // mask read in-pass
           }
           return g;
         });
  return y;
}

// Device-agnostic: the kernels run on x's device, the all-ranks sum (RankSum) on host doubles. On a CUDA
// rank that costs one device->host copy of the 2C sums (a wait for the device) per layer in forward and
// one in backward; what goes back (stats, mean/invstd, running-stat steps, the all-ranks gradient sums)
// are small host->device copies (Tensor::to). On a CPU rank every .to(dev) is the tensor itself.
Tensor sync_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                       Tensor& running_var, double momentum, double eps, const RankSum& all_ranks_sum) {
  RTUNE_CHECK(x.dim() == 4 && (x.dtype() == DType::f32 || x.dtype() == DType::f64),
              "sync_batch_norm: a float32/float64 N×C×H×W tensor, not {} on {}", x.str(), x.device().str());
  const int64_t C = x.size(1);
  const Device dev = x.device();
  // One all-reduce of [Σx (C), Σx² (C), count]; sums in double, so Σx² − count·mean² keeps its digits.
  Tensor sums = empty({2 * C}, {DType::f64, dev});
  kernels::batch_norm_channel_sums(x, sums);
  std::vector<double> buf = sums.to_vector<double>();  // the forward's device->host copy
  buf.push_back(double(x.numel() / C));
  all_ranks_sum(buf);
  const double count = buf.back();
  RTUNE_CHECK(count > 1, "batch_norm: training needs more than one value per channel over the ranks, got input {}", x.str());
  const size_t nc = size_t(C);
  std::vector<double> stats(2 * nc), batch_var(nc);  // stats: mean, then invstd (batch_norm_normalize)
  for (size_t c = 0; c < nc; ++c) {
    stats[c] = buf[c] / count;
    batch_var[c] = std::max(0.0, buf[nc + c] / count - stats[c] * stats[c]);  // biased: what normalises
    stats[nc + c] = 1.0 / std::sqrt(batch_var[c] + eps);
  }
  Tensor y = empty_like(x);
  kernels::batch_norm_normalize(x, weight, bias, from_vector(stats, {2 * C}, DType::f64).to(dev), y);
  // running = (1 − momentum)·running + momentum·batch statistic, in double on the running tensor's device
  // (no read back to the host), rounded once to its dtype.
  for (auto [running, at, unbias] : {std::tuple{&running_mean, stats.data(), 1.0}, {&running_var, batch_var.data(), count / (count - 1)}}) {
    if (!running->defined()) continue;
    std::vector<double> step(nc);
    for (size_t c = 0; c < nc; ++c) step[c] = momentum * at[c] * unbias;
    Tensor mixed = empty({C}, {DType::f64, running->device()});
    kernels::scale(running->to(DType::f64), 1 - momentum, mixed);
    kernels::add(mixed, from_vector(step, {C}, DType::f64).to(running->device()), mixed);
    kernels::copy(mixed, *running);
  }
  // The backward reads mean and invstd rounded to x's dtype, as batch_norm's saved statistics are.
  const Tensor mean_t = from_vector(std::vector<double>(stats.begin(), stats.begin() + C), {C}, x.dtype()).to(dev);
  const Tensor invstd_t = from_vector(std::vector<double>(stats.begin() + C, stats.end()), {C}, x.dtype()).to(dev);
  Tensor xs = x.detach(), ws = maybe_detach(weight);
  const DType pdt = weight.defined() ? weight.dtype() : x.dtype();
  record("sync_batch_norm", {x, weight, bias}, y,
         [xs, ws, mean_t, invstd_t, count, all_ranks_sum, pdt](const Tensor& gy, const Needs& n) {
           const int64_t C = xs.size(1);
           Grads g(3);
           Tensor sums = empty({2 * C}, {DType::f64, gy.device()});  // this rank's Σgy, Σgy·x̂
           kernels::batch_norm_backward_sums(gy, xs, mean_t, invstd_t, sums);
           if (n[1]) g[1] = sums.narrow(0, C, C).to(pdt);  // weight and bias: this rank's share
           if (n[2]) g[2] = sums.narrow(0, 0, C).to(pdt);
           if (n[0]) {
             std::vector<double> all = sums.to_vector<double>();  // the backward's device->host copy
             all_ranks_sum(all);
             g[0] = empty(xs.shape(), {gy.dtype(), gy.device(), gy.suggest_memory_format()});
             kernels::batch_norm_backward_input_from_sums(
                 gy, xs, ws, mean_t, invstd_t, from_vector(all, {2 * C}, DType::f64).to(gy.device()), count, g[0]);
           }
           return g;
         });
  return y;
}

Tensor relu(const Tensor& x) {
  Tensor y = empty_like(x);
  kernels::relu_forward(x, y);
  Tensor ys = y.detach();
  record("relu", {x}, y, [ys](const Tensor& gy, const Needs&) {
    Tensor gx = empty_like(ys);
    kernels::relu_backward(gy, ys, gx);
    return Grads{gx};
  });
  return y;
}

Tensor max_pool2d(const Tensor& x, const Pool2dArgs& a) {
  Shape ys = kernels::max_pool2d_out_shape(x.shape(), a);
  Tensor y = empty(ys, {x.dtype(), x.device(), x.suggest_memory_format()});
  Tensor idx = empty(ys, {DType::i64, x.device()});
  kernels::max_pool2d_forward(x, a, y, idx);
  Shape x_shape = x.shape();
  record("max_pool2d", {x}, y, [idx, x_shape](const Tensor& gy, const Needs&) {
    Tensor gx = empty(x_shape, {gy.dtype(), gy.device(), gy.suggest_memory_format()});
    kernels::max_pool2d_backward(gy, idx, gx);
    return Grads{gx};
  });
  return y;
}

Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w) {
  RTUNE_CHECK(x.dim() == 4 && out_h > 0 && out_w > 0, "adaptive_avg_pool2d: bad input {} or output size {}x{}",
              x.str(), out_h, out_w);
  Tensor y = empty({x.size(0), x.size(1), out_h, out_w}, like(x));
  kernels::adaptive_avg_pool2d_forward(x, y);
  Shape x_shape = x.shape();
  const MemoryFormat x_format = x.suggest_memory_format();  // gy's ([N, C, 1, 1] reads as NCHW): the gradient keeps x's
  record("adaptive_avg_pool2d", {x}, y, [x_shape, x_format](const Tensor& gy, const Needs&) {
    Tensor gx = empty(x_shape, {gy.dtype(), gy.device(), x_format});
    kernels::adaptive_avg_pool2d_backward(gy, gx);
    return Grads{gx};
  });
  return y;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  RTUNE_CHECK(x.dim() == 2 && w.dim() == 2, "linear: expected 2-d input and weight, got {} and {}", x.str(), w.str());
  Tensor y = empty({x.size(0), w.size(0)}, like(x));
  kernels::linear_forward(x, w, bias, y);
  Tensor xs = needs_grad(w) ? x.detach() : Tensor(), ws = needs_grad(x) ? w.detach() : Tensor();
  Shape x_shape = x.shape(), w_shape = w.shape();
  record("linear", {x, w, bias}, y, [xs, ws, x_shape, w_shape](const Tensor& gy, const Needs& n) {
    Grads g(3);
    if (n[0]) {
      g[0] = empty(x_shape, like(gy));
      kernels::linear_backward_input(gy, ws, g[0]);
    }
    if (n[1]) {
      g[1] = empty(w_shape, like(gy));
      kernels::linear_backward_weight(gy, xs, g[1]);
    }
    if (n[2]) {
      g[2] = empty({w_shape[0]}, like(gy));
      kernels::linear_backward_bias(gy, g[2]);
    }
    return g;
  });
  return y;
}

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = empty_like(a);
  kernels::add(a, b, y);
  record("add", {a, b}, y, [](const Tensor& gy, const Needs& n) { return Grads{n[0] ? gy : Tensor(), n[1] ? gy : Tensor()}; });
  return y;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor y = empty_like(a);
  kernels::sub(a, b, y);
  record("sub", {a, b}, y, [](const Tensor& gy, const Needs& n) {
    Grads g(2);
    if (n[0]) g[0] = gy;
    if (n[1]) {
      g[1] = empty_like(gy);
      kernels::scale(gy, -1.0, g[1]);
    }
    return g;
  });
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = empty_like(a);
  kernels::mul(a, b, y);
  Tensor as = needs_grad(b) ? a.detach() : Tensor(), bs = needs_grad(a) ? b.detach() : Tensor();
  record("mul", {a, b}, y, [as, bs](const Tensor& gy, const Needs& n) {
    Grads g(2);
    if (n[0]) {
      g[0] = empty_like(gy);
      kernels::mul(gy, bs, g[0]);
    }
    if (n[1]) {
      g[1] = empty_like(gy);
      kernels::mul(gy, as, g[1]);
    }
    return g;
  });
  return y;
}

Tensor mul(const Tensor& a, double s) {
  Tensor y = empty_like(a);
  kernels::scale(a, s, y);
  record("mul_scalar", {a}, y, [s](const Tensor& gy, const Needs&) {
    Tensor g = empty_like(gy);
    kernels::scale(gy, s, g);
    return Grads{g};
  });
  return y;
}

Tensor sum(const Tensor& x) {
  Tensor y = empty({}, like(x));
  kernels::sum_all(x, y);
  Shape x_shape = x.shape();
  record("sum", {x}, y, [x_shape](const Tensor& gy, const Needs&) {
    return Grads{gy.reshape(Shape(x_shape.size(), 1)).expand(x_shape).contiguous()};
  });
  return y;
}

Tensor mean(const Tensor& x) { return mul(sum(x), 1.0 / double(std::max<int64_t>(x.numel(), 1))); }

Tensor softmax(const Tensor& x) {
  Tensor y = empty(x.shape(), like(x));
  kernels::softmax_forward(x, y);
  Tensor ys = y.detach();
  record("softmax", {x}, y, [ys](const Tensor& gy, const Needs&) {
    Tensor gx = empty(ys.shape(), like(ys));
    kernels::softmax_backward(gy, ys, gx);
    return Grads{gx};
  });
  return y;
}

Tensor log_softmax(const Tensor& x) {
  Tensor y = empty(x.shape(), like(x));
  kernels::log_softmax_forward(x, y);
  Tensor ys = y.detach();
  record("log_softmax", {x}, y, [ys](const Tensor& gy, const Needs&) {
    Tensor gx = empty(ys.shape(), like(ys));
    kernels::log_softmax_backward(gy, ys, gx);
    return Grads{gx};
  });
  return y;
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing, Reduction r) {
  Tensor loss = empty({}, like(logits));
  Tensor log_probs = empty(logits.shape(), like(logits));
  kernels::cross_entropy_forward(logits, target, label_smoothing, r, loss, log_probs);
  Tensor ts = target.detach();
  record("cross_entropy", {logits}, loss, [log_probs, ts, label_smoothing, r](const Tensor& gy, const Needs&) {
    Tensor g = empty(log_probs.shape(), like(log_probs));
    kernels::cross_entropy_backward(gy, log_probs, ts, label_smoothing, r, g);
    return Grads{g};
  });
  return loss;
}

Tensor add_relu(const Tensor& a, const Tensor& b) {
  Tensor y = empty_like(a);
  kernels::add_relu_forward(a, b, y);
  Tensor ys = y.detach();
  record("add_relu", {a, b}, y, [ys](const Tensor& gy, const Needs& n) {
    Tensor gx = empty_like(ys);
    kernels::relu_backward(gy, ys, gx);
    return Grads{n[0] ? gx : Tensor(), n[1] ? gx : Tensor()};
  });
  return y;
}

}  // namespace rtune
