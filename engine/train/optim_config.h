// Optimizer construction for a fine-tuning run: torch.optim.SGD / Adam / AdamW / RMSprop with two
// parameter groups, the "head" (fc.*) at the base LR and the "backbone" (every other trainable
// parameter) at base LR x backbone_lr_mult, as in PyTorch recipes that pass
// [{"params": backbone, "lr": lr * m}, {"params": model.fc.parameters()}]. Frozen parameters are left out.
#pragma once
#include <memory>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>
#include "engine/optim/optimizer.h"
#include "models/resnet.h"

namespace rtune::train {

struct OptimConfig {
  std::string kind = "sgd";     // sgd | adam | adamw | rmsprop
  double lr = 0.01;             // head LR (the base LR)
  double weight_decay = 0.0;
  double momentum = 0.9;        // SGD / RMSprop momentum
  double dampening = 0.0;
  bool nesterov = false;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // Adam/AdamW (eps also RMSprop's)
  bool amsgrad = false;
  double alpha = 0.99;          // RMSprop smoothing
  bool centered = false;
  double backbone_lr_mult = 1.0;
  nlohmann::json to_json() const;
};

// Throws rtune::Error for an unknown kind or an out-of-range value (lr <= 0, beta outside [0, 1), …).
void validate(const OptimConfig& c);

// Group 0 "backbone", group 1 "head"; either may be empty. `lr` is the head LR for this phase.
std::vector<optim::ParamGroup> make_param_groups(models::ResNet& model, const OptimConfig& c, double lr);
std::unique_ptr<optim::Optimizer> make_optimizer(const OptimConfig& c, std::vector<optim::ParamGroup> groups);

}  // namespace rtune::train
