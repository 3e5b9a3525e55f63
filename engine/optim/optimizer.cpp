#include "engine/optim/optimizer.h"
#include <algorithm>
#include <deque>
#include "kernels/ops.h"

namespace rtune::optim {

namespace {
// Parameters are float32 or float64 master weights (bf16 compute keeps fp32 masters).
void check_master(const Tensor& p) {
  RTUNE_CHECK(p.dtype() == DType::f32 || p.dtype() == DType::f64,
              "optimizer: parameters must be float32 or float64 master weights, got {}", p.str());
}

// One list update per (device, dtype) of the parameters, in first-seen order: a single call, i.e. a
// handful of kernel launches on the GPU, for the usual model on one device in one dtype.
template <class Slot>
void update_lists(const std::vector<Slot>& slots, void (*update_many)(const std::vector<Slot>&)) {
  std::vector<std::vector<Slot>> lists;
  for (const Slot& s : slots) {
    auto same = [&](const std::vector<Slot>& l) {
      return l[0].param->device() == s.param->device() && l[0].param->dtype() == s.param->dtype();
    };
    auto it = std::find_if(lists.begin(), lists.end(), same);
    if (it == lists.end()) lists.push_back({s});
    else it->push_back(s);
  }
  for (const auto& l : lists) update_many(l);
}
}  // namespace

Optimizer::Optimizer(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {
  for (auto& g : groups_) {
    for (Tensor* p : g.params)
      RTUNE_CHECK(p && p->defined() && p->requires_grad(), "optimizer: group '{}' holds a parameter that does not "
                  "require grad (frozen parameters must not be given to the optimizer)", g.name);
    slots_.emplace_back(g.params.size());
  }
}

void Optimizer::zero_grad() {
  for (auto& g : groups_)
    for (Tensor* p : g.params) p->zero_grad();
}

Tensor& Optimizer::state(size_t group, size_t index, const std::string& name, const Tensor& like) {
  Slot& slot = slots_[group][index];
  for (auto& [n, t] : slot.buffers)
    if (n == name) return t;
  for (auto it = slot.reserved.begin(); it != slot.reserved.end(); ++it)
    if (it->first == name && it->second.shape() == like.shape() && it->second.dtype() == like.dtype() &&
        it->second.device() == like.device()) {
      slot.buffers.push_back(std::move(*it));
      slot.reserved.erase(it);
      return slot.buffers.back().second;
    }
  slot.buffers.emplace_back(name, zeros(like.shape(), {like.dtype(), like.device()}));
  return slot.buffers.back().second;
}

void Optimizer::reserve_state() {
  for (size_t g = 0; g < groups_.size(); ++g)
    for (size_t i = 0; i < groups_[g].params.size(); ++i) {
      const Tensor& p = *groups_[g].params[i];
      Slot& slot = slots_[g][i];
      for (const std::string& name : buffer_names(groups_[g])) {
        auto held = [&](const auto& list) {
          for (auto& [n, t] : list)
            if (n == name) return true;
          return false;
        };
        if (!held(slot.buffers) && !held(slot.reserved))
          slot.reserved.emplace_back(name, zeros(p.shape(), {p.dtype(), p.device()}));
      }
    }
}

std::vector<std::string> SGD::buffer_names(const ParamGroup& g) const {
  if (g.momentum != 0) return {"momentum_buffer"};
  return {};
}

std::vector<std::string> Adam::buffer_names(const ParamGroup&) const {
  if (amsgrad_) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  return {"exp_avg", "exp_avg_sq"};
}

std::vector<std::string> RMSprop::buffer_names(const ParamGroup& g) const {
  std::vector<std::string> names{"square_avg"};
  if (centered_) names.push_back("grad_avg");
  if (g.momentum > 0) names.push_back("momentum_buffer");
  return names;
}

bool Optimizer::has_state(size_t group, size_t index, const std::string& name) const {
  for (auto& [n, t] : slots_[group][index].buffers)
    if (n == name) return true;
  return false;
}

nlohmann::json Optimizer::state_json() const {
  nlohmann::json j;
  j["kind"] = kind();
  j["step"] = step_count_;
  for (auto& g : groups_)
    j["groups"].push_back({{"name", g.name}, {"lr", g.lr}, {"weight_decay", g.weight_decay}, {"momentum", g.momentum}});
  return j;
}

void Optimizer::load_state_json(const nlohmann::json& j) {
  RTUNE_CHECK(j.value("kind", "") == kind(), "checkpoint holds a '{}' optimizer state, not '{}'", j.value("kind", "?"),
              kind());
  RTUNE_CHECK(j["groups"].size() == groups_.size(), "checkpoint has {} parameter groups, the optimizer {}",
              j["groups"].size(), groups_.size());
  step_count_ = j["step"].get<int64_t>();
  for (size_t i = 0; i < groups_.size(); ++i) {
    groups_[i].lr = j["groups"][i]["lr"].get<double>();
    groups_[i].weight_decay = j["groups"][i]["weight_decay"].get<double>();
    groups_[i].momentum = j["groups"][i]["momentum"].get<double>();
  }
}

std::vector<std::pair<std::string, Tensor>> Optimizer::state_tensors() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t g = 0; g < slots_.size(); ++g)
    for (size_t i = 0; i < slots_[g].size(); ++i)
      for (auto& [n, t] : slots_[g][i].buffers) out.emplace_back(fmt::format("optim.{}.{}.{}", g, i, n), t);
  return out;
}

void Optimizer::load_state_tensors(const std::vector<std::pair<std::string, Tensor>>& tensors) {
  for (auto& s : slots_)
    for (auto& slot : s) slot.buffers.clear();
  for (auto& [name, t] : tensors) {
    size_t g = 0, i = 0;
    char buf[64] = {0};
    RTUNE_CHECK(std::sscanf(name.c_str(), "optim.%zu.%zu.%63s", &g, &i, buf) == 3 && g < slots_.size() &&
                    i < slots_[g].size(),
                "checkpoint: optimizer state '{}' does not fit this model's parameter groups", name);
    Tensor* p = groups_[g].params[i];
    // Per-parameter counters (Adam's "step") are float64 scalars on the host, as state() creates them.
    const bool counter = t.dim() == 0;
    RTUNE_CHECK(counter || t.shape() == p->shape(), "checkpoint: optimizer state '{}' has shape {}, parameter {}", name,
                shape_str(t.shape()), shape_str(p->shape()));
    Slot& slot = slots_[g][i];
    slot.buffers.emplace_back(buf, counter ? t.to(DType::f64).clone() : t.to(p->dtype()).to(p->device()).clone());
    std::erase_if(slot.reserved, [&](const auto& r) { return r.first == slot.buffers.back().first; });
  }
}

SGD::SGD(std::vector<ParamGroup> groups, double dampening, bool nesterov)
    : Optimizer(std::move(groups)), dampening_(dampening), nesterov_(nesterov) {
  for (auto& g : groups_)
    RTUNE_CHECK(!nesterov_ || (g.momentum > 0 && dampening_ == 0), "SGD: nesterov needs momentum and zero dampening");
}

void SGD::step() {
  ++step_count_;
  std::deque<Tensor> held;  // gradients and state handles the slots point to (stable addresses)
  std::vector<kernels::SgdSlot> slots;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    ParamGroup& g = groups_[gi];
    SgdHyper h{g.lr, g.momentum, dampening_, g.weight_decay, nesterov_, false};
    for (size_t i = 0; i < g.params.size(); ++i) {
      Tensor& p = *g.params[i];
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      check_master(p);
      kernels::SgdSlot s{&p, &held.emplace_back(std::move(grad)), nullptr, h, false};
      if (g.momentum != 0) {
        s.first_step = !has_state(gi, i, "momentum_buffer");
        s.momentum_buf = &held.emplace_back(state(gi, i, "momentum_buffer", p));
      }
      slots.push_back(s);
    }
  }
  update_lists(slots, kernels::sgd_update_many);  // fused: a few multi-tensor kernels on the GPU
}

Adam::Adam(std::vector<ParamGroup> groups, double beta2, double eps, bool amsgrad, bool decoupled)
    : Optimizer(std::move(groups)), beta2_(beta2), eps_(eps), amsgrad_(amsgrad), decoupled_(decoupled) {}

void Adam::step() {
  ++step_count_;
  std::deque<Tensor> held;
  std::vector<kernels::AdamSlot> slots;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    ParamGroup& g = groups_[gi];
    AdamHyper h{g.lr, g.momentum, beta2_, eps_, g.weight_decay, amsgrad_, decoupled_, false};
    for (size_t i = 0; i < g.params.size(); ++i) {
      Tensor& p = *g.params[i];
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      check_master(p);
      // PyTorch keeps a step count per parameter; it advances only when the parameter had a gradient.
      Tensor steps = state(gi, i, "step", scalar_tensor(0, {DType::f64}));
      double n = steps.item<double>() + 1;
      steps.fill_(n);
      kernels::AdamSlot s;
      s.param = &p;
      s.grad = &held.emplace_back(std::move(grad));
      s.exp_avg = &held.emplace_back(state(gi, i, "exp_avg", p));
      s.exp_avg_sq = &held.emplace_back(state(gi, i, "exp_avg_sq", p));
      if (amsgrad_) s.max_exp_avg_sq = &held.emplace_back(state(gi, i, "max_exp_avg_sq", p));
      s.step = make_adam_step(h, int64_t(n));
      slots.push_back(s);
    }
  }
  update_lists(slots, kernels::adam_update_many);
}

RMSprop::RMSprop(std::vector<ParamGroup> groups, double alpha, double eps, bool centered)
    : Optimizer(std::move(groups)), alpha_(alpha), eps_(eps), centered_(centered) {}

void RMSprop::step() {
  ++step_count_;
  std::deque<Tensor> held;
  std::vector<kernels::RmspropSlot> slots;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    ParamGroup& g = groups_[gi];
    RmspropHyper h{g.lr, alpha_, eps_, g.weight_decay, g.momentum, centered_, false};
    for (size_t i = 0; i < g.params.size(); ++i) {
      Tensor& p = *g.params[i];
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      check_master(p);
      kernels::RmspropSlot s;
      s.param = &p;
      s.grad = &held.emplace_back(std::move(grad));
      s.square_avg = &held.emplace_back(state(gi, i, "square_avg", p));
      if (centered_) s.grad_avg = &held.emplace_back(state(gi, i, "grad_avg", p));
      if (g.momentum > 0) s.momentum_buf = &held.emplace_back(state(gi, i, "momentum_buffer", p));
      s.hyper = h;
      slots.push_back(s);
    }
  }
  update_lists(slots, kernels::rmsprop_update_many);
}

namespace {
// torch.nn.utils.clip_grad_norm_ on the CPU by the rules of kernels/update_rules.h: per-tensor norms
// (double accumulation) rounded to T, combined, the total rounded to T, clip_coef<T>, then every
// gradient scaled by it (also when it is 1).
template <class T> void clip_norm_impl(std::vector<Tensor>& grads, double max_norm, double norm_type) {
  const int kind = norm_kind(norm_type);
  double acc = 0;
  for (double n : kernels::norms(grads, norm_type)) acc = norm_add(acc, double(T(n)), kind, norm_type);
  const T coef = clip_coef<T>(double(T(norm_finish(acc, kind, norm_type))), max_norm);
  for (Tensor& g : grads) kernels::scale(g, double(coef), g);  // exact: double(coef) converts back to coef
}
}  // namespace

void clip_grad_norm(const std::vector<Tensor*>& params, double max_norm, double norm_type) {
  RTUNE_CHECK(norm_type > 0.0, "clip_grad_norm_: norm_type must be > 0 or inf, got {}", norm_type);
  RTUNE_CHECK(max_norm >= 0.0, "clip_grad_norm_: max_norm must be >= 0, got {}", max_norm);
  std::vector<Tensor> grads;
  for (Tensor* p : params)
    if (p->grad().defined()) grads.push_back(p->grad());
  if (grads.empty()) return;
  for (Tensor& g : grads) {
    require_same_dtype("clip_grad_norm_", grads[0], g);
    RTUNE_CHECK(g.is_contiguous(), "clip_grad_norm_: gradients must be dense, got {}", g.str());
  }
  // On a GPU the norms never come to the host: no wait for the device in mid-step.
  if (grads[0].is_cuda()) return kernels::clip_grad_norm_on_device(grads, max_norm, norm_type);
  if (grads[0].dtype() == DType::f32) clip_norm_impl<float>(grads, max_norm, norm_type);
  else if (grads[0].dtype() == DType::f64) clip_norm_impl<double>(grads, max_norm, norm_type);
  else fail("clip_grad_norm_: float32 or float64 gradients, got {}", grads[0].str());
}

void clip_grad_value(const std::vector<Tensor*>& params, double clip_value) {
  RTUNE_CHECK(clip_value >= 0.0, "clip_grad_value_: clip_value must be >= 0, got {}", clip_value);
  for (Tensor* p : params) {
    Tensor g = p->grad();
    if (!g.defined()) continue;
    RTUNE_CHECK(g.is_contiguous(), "clip_grad_value_: gradients must be dense, got {}", g.str());
    kernels::clamp(g, -clip_value, clip_value, g);  // NaN stays NaN
  }
}

}  // namespace rtune::optim
