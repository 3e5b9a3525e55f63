// Optimizer construction for a fine-tuning run: torch.optim.SGD / Adam / AdamW / RMSprop with parameter
// groups per network stage, as in PyTorch recipes that pass
// [{"params": model.layer3.parameters(), "lr": lr * 0.1}, …, {"params": model.fc.parameters()}].
// The head (fc.*) trains at the base LR; each backbone stage (stem = conv1/bn1, layer1…layer4) at
// base LR x its multiplier from `--lr-mult`, e.g. "layer4=0.5,backbone=0.1" (backbone = every stage not
// named). Stages that share a multiplier share a group, so the default is two groups, "backbone" and
// "head", and a scheduler needs one value per distinct group. Frozen parameters are left out.
#pragma once
#include <memory>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>
#include "engine/optim/optimizer.h"
#include "models/resnet.h"

namespace rtune::finetune {

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
  std::vector<std::pair<std::string, double>> lr_mult;  // stage -> multiplier, parsed by parse_lr_mult
  nlohmann::json to_json() const;
};

// "layer4=0.5,layer3=0.2,backbone=0.1": stages stem, layer1…layer4 and "backbone" (the default for
// every stage not named, 1 if absent); each multiplier >= 0. Throws rtune::Error naming the bad item.
std::vector<std::pair<std::string, double>> parse_lr_mult(const std::string& spec);
std::string lr_mult_str(const std::vector<std::pair<std::string, double>>& m);

// Throws rtune::InvalidArgument for an unknown kind or an out-of-range value (lr <= 0, beta outside
// [0, 1), …). Part of TrainConfig::validate(); make_optimizer() expects a validated config.
void validate(const OptimConfig& c);

// Backbone groups in network order (named after their first stage, or "backbone" when they hold every
// unnamed stage), then "head" last; any may be empty. `lr` is the head LR for this phase.
std::vector<optim::ParamGroup> make_param_groups(models::ResNet& model, const OptimConfig& c, double lr);
std::unique_ptr<optim::Optimizer> make_optimizer(const OptimConfig& c, std::vector<optim::ParamGroup> groups);

}  // namespace rtune::finetune
