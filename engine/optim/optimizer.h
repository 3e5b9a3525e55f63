// Optimizers over model parameters (torch.optim.SGD / Adam / AdamW / RMSprop, foreach=False
// semantics) with parameter groups, plus gradient clipping over parameter lists. The per-element
// math is kernels/update_rules.h, shared with the fused GPU kernels.
#pragma once
#include <memory>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>
#include "kernels/update_rules.h"
#include "engine/tensor.h"

namespace rtune::optim {

struct ParamGroup {
  std::string name;             // e.g. "backbone", "head" (for logs)
  std::vector<Tensor*> params;  // slots in the model, so device/dtype moves stay visible
  double lr = 1e-3;
  double weight_decay = 0.0;
  double momentum = 0.0;        // SGD/RMSprop momentum, Adam beta1 (schedulers may cycle it)
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual void step() = 0;  // parameters without a gradient are skipped, as in PyTorch
  void zero_grad();         // drops every .grad (set_to_none)
  std::vector<ParamGroup>& groups() { return groups_; }
  // Exact state for checkpoints: scalars as JSON, per-parameter buffers as named tensors.
  virtual nlohmann::json state_json() const;
  virtual void load_state_json(const nlohmann::json& j);
  std::vector<std::pair<std::string, Tensor>> state_tensors() const;
  void load_state_tensors(const std::vector<std::pair<std::string, Tensor>>& tensors);
  virtual std::string kind() const = 0;
  // Allocates now every per-parameter buffer step() will create, kept aside until step() asks for it,
  // so the state and its checkpoints stay PyTorch's lazy ones. A training loop calls this before its
  // first forward: step 1 then holds all the device memory later steps use, and later steps allocate
  // none (otherwise step 1's state takes blocks its activations freed, and step 2 allocates again).
  void reserve_state();

 protected:
  explicit Optimizer(std::vector<ParamGroup> groups);
  // The buffers step() keeps for a parameter of group `g` (e.g. {"exp_avg", "exp_avg_sq"}).
  virtual std::vector<std::string> buffer_names(const ParamGroup& g) const = 0;
  // Per-parameter buffers (e.g. exp_avg), created lazily with the parameter's shape, dtype and device.
  Tensor& state(size_t group, size_t index, const std::string& name, const Tensor& like);
  bool has_state(size_t group, size_t index, const std::string& name) const;
  std::vector<ParamGroup> groups_;
  int64_t step_count_ = 0;

 private:
  struct Slot {
    std::vector<std::pair<std::string, Tensor>> buffers;
    std::vector<std::pair<std::string, Tensor>> reserved;  // zeros from reserve_state(), not yet state
  };
  std::vector<std::vector<Slot>> slots_;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, double dampening = 0.0, bool nesterov = false);
  void step() override;
  std::string kind() const override { return "sgd"; }
 private:
  std::vector<std::string> buffer_names(const ParamGroup& g) const override;
  double dampening_;
  bool nesterov_;
};

class Adam : public Optimizer {  // AdamW when decoupled
 public:
  Adam(std::vector<ParamGroup> groups, double beta2 = 0.999, double eps = 1e-8, bool amsgrad = false,
       bool decoupled = false);
  void step() override;
  std::string kind() const override { return decoupled_ ? "adamw" : "adam"; }
 private:
  std::vector<std::string> buffer_names(const ParamGroup& g) const override;
  double beta2_, eps_;
  bool amsgrad_, decoupled_;
};

class RMSprop : public Optimizer {
 public:
  RMSprop(std::vector<ParamGroup> groups, double alpha = 0.99, double eps = 1e-8, bool centered = false);
  void step() override;
  std::string kind() const override { return "rmsprop"; }
 private:
  std::vector<std::string> buffer_names(const ParamGroup& g) const override;
  double alpha_, eps_;
  bool centered_;
};

// torch.nn.utils.clip_grad_norm_ / clip_grad_value_ over the parameters' gradients. (The total norm is
// not returned: on a GPU it stays on the device, so the step never waits for it.)
void clip_grad_norm(const std::vector<Tensor*>& params, double max_norm, double norm_type = 2.0);
void clip_grad_value(const std::vector<Tensor*>& params, double clip_value);

}  // namespace rtune::optim
