#include "engine/autograd.h"
#include <unordered_map>
#include <unordered_set>
#include "kernels/ops.h"

namespace rtune {

namespace {
thread_local bool t_grad_enabled = true;
thread_local LeafGradHook* t_leaf_hook = nullptr;
}

LeafGradHook::LeafGradHook(std::function<void(const TensorImpl*)> on_accumulated)
    : fn_(std::move(on_accumulated)), prev_(t_leaf_hook) {
  t_leaf_hook = this;
}
LeafGradHook::~LeafGradHook() { t_leaf_hook = prev_; }

bool grad_enabled() { return t_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = prev_; }

bool any_needs_grad(const std::vector<Tensor>& inputs) {
  for (const Tensor& t : inputs)
    if (needs_grad(t)) return true;
  return false;
}

void record(const char* name, const std::vector<Tensor>& inputs, Tensor& out, BackwardRule rule) {
  if (!any_needs_grad(inputs)) return;
  auto node = std::make_shared<Node>();
  node->name = name;
  for (const Tensor& t : inputs) {
    Edge e;
    if (needs_grad(t)) {
      if (t.grad_fn()) e.node = t.grad_fn();
      else e.leaf = t.impl_ptr();
    }
    node->needs.push_back(e.needed());
    node->inputs.push_back(std::move(e));
  }
  node->rule = std::move(rule);
  out.set_grad_fn(std::move(node));
}

namespace {

// Adds g into the leaf's .grad (in place once it exists, as PyTorch accumulates).
void accumulate_leaf(const std::shared_ptr<TensorImpl>& leaf, const Tensor& g) {
  Tensor param(leaf);
  Tensor gd = g.detach();
  if (gd.shape() != param.shape()) gd = kernels::sum_to(gd, param.shape());
  Tensor existing = param.grad();
  if (!existing.defined()) {
    Tensor owned = empty_like(param);
    owned.copy_(gd);
    param.set_grad(owned);
  } else {
    kernels::add_(existing, gd);
  }
  for (LeafGradHook* h = t_leaf_hook; h; h = h->prev()) h->call(leaf.get());
}

Tensor sum_grads(const Tensor& a, const Tensor& b) {
  Tensor r = empty_like(a);
  kernels::add(a, b, r);
  return r;
}

}  // namespace

void run_backward(const Tensor& root, const Tensor& grad_root) {
  NoGradGuard no_grad;  // rules use the façade; never record while differentiating
  if (!root.grad_fn()) {
    if (root.requires_grad()) accumulate_leaf(root.impl_ptr(), grad_root);
    return;
  }
  // Topological order by iterative DFS (graphs of deep nets would overflow a recursive one).
  std::vector<Node*> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<Node*, size_t>> stack{{root.grad_fn().get(), 0}};
  seen.insert(root.grad_fn().get());
  while (!stack.empty()) {
    auto& [n, i] = stack.back();
    if (i < n->inputs.size()) {
      Node* child = n->inputs[i++].node.get();
      if (child && seen.insert(child).second) stack.push_back({child, 0});
    } else {
      order.push_back(n);
      stack.pop_back();
    }
  }
  std::unordered_map<Node*, Tensor> pending;
  pending[root.grad_fn().get()] = grad_root;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* n = *it;
    auto found = pending.find(n);
    if (found == pending.end()) continue;  // no gradient flowed here
    Tensor g = std::move(found->second);
    pending.erase(found);
    RTUNE_CHECK(n->rule, "backward through '{}' a second time: its saved tensors were already freed", n->name);
    std::vector<Tensor> grads = n->rule(g, n->needs);
    n->rule = nullptr;
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      const Edge& e = n->inputs[i];
      if (!e.needed()) continue;
      RTUNE_CHECK(i < grads.size() && grads[i].defined(), "backward of '{}' gave no gradient for input {}",
                  n->name, i);
      if (e.leaf) {
        accumulate_leaf(e.leaf, grads[i]);
      } else {
        auto [slot, fresh] = pending.try_emplace(e.node.get(), grads[i]);
        if (!fresh) slot->second = sum_grads(slot->second, grads[i]);
      }
    }
  }
}

}  // namespace rtune
