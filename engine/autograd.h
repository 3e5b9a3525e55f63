// Reverse-mode autograd: each differentiable op records one Node whose backward rule maps the output
// gradient to input gradients. Rules are written once against the kernels/ façade, so every backend
// shares them. An op records nothing when no input requires grad, and a rule is told which inputs need
// a gradient, so a frozen backbone costs only its forward.
#pragma once
#include <functional>
#include <memory>
#include <vector>
#include "engine/tensor.h"

namespace rtune {

struct Edge {
  std::shared_ptr<Node> node;        // the input's producer, or
  std::shared_ptr<TensorImpl> leaf;  // the input itself when it is a leaf that requires grad
  bool needed() const { return node || leaf; }
};

// grads[i] for inputs[i]; return an undefined Tensor where needs[i] is false.
using BackwardRule = std::function<std::vector<Tensor>(const Tensor& grad_out, const std::vector<bool>& needs)>;

struct Node {
  const char* name = "";
  std::vector<Edge> inputs;
  std::vector<bool> needs;
  BackwardRule rule;  // released after it has run, freeing saved tensors
};

bool grad_enabled();
struct NoGradGuard {  // RAII: disables recording in this scope (thread-local), like torch.no_grad()
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;
 private:
  bool prev_;
};

// While alive, run_backward on this thread calls `on_accumulated(leaf)` after each gradient it adds into a
// leaf's .grad (PyTorch's post-accumulate-grad hook). Data-parallel training uses it to start a bucket's
// all-reduce as soon as the bucket's gradients are final, overlapping the rest of the backward (as DDP does).
class LeafGradHook {
 public:
  explicit LeafGradHook(std::function<void(const TensorImpl*)> on_accumulated);
  ~LeafGradHook();
  void call(const TensorImpl* leaf) const { if (fn_) fn_(leaf); }
  LeafGradHook* prev() const { return prev_; }
  LeafGradHook(const LeafGradHook&) = delete;
  LeafGradHook& operator=(const LeafGradHook&) = delete;

 private:
  std::function<void(const TensorImpl*)> fn_;
  LeafGradHook* prev_;
};

// True when an op should record a node for this input.
inline bool needs_grad(const Tensor& t) { return grad_enabled() && t.defined() && t.requires_grad(); }
bool any_needs_grad(const std::vector<Tensor>& inputs);

// Attaches a node to `out` when any input needs grad. Rules must capture inputs/outputs they need via
// detach() (never `out` itself: that would form a reference cycle).
void record(const char* name, const std::vector<Tensor>& inputs, Tensor& out, BackwardRule rule);

// Runs the backward pass from `root` (called by Tensor::backward).
void run_backward(const Tensor& root, const Tensor& grad_root);

}  // namespace rtune
