#include "engine/train/optim_config.h"

namespace rtune::train {

nlohmann::json OptimConfig::to_json() const {
  return {{"kind", kind}, {"lr", lr}, {"weight_decay", weight_decay}, {"momentum", momentum},
          {"dampening", dampening}, {"nesterov", nesterov}, {"beta1", beta1}, {"beta2", beta2}, {"eps", eps},
          {"amsgrad", amsgrad}, {"alpha", alpha}, {"centered", centered}, {"backbone_lr_mult", backbone_lr_mult}};
}

void validate(const OptimConfig& c) {
  if (c.kind != "sgd" && c.kind != "adam" && c.kind != "adamw" && c.kind != "rmsprop")
    fail("--opt '{}': expected sgd, adam, adamw or rmsprop", c.kind);
  RTUNE_CHECK(c.lr > 0, "--lr {}: must be > 0", c.lr);
  RTUNE_CHECK(c.weight_decay >= 0, "--wd {}: must be >= 0", c.weight_decay);
  RTUNE_CHECK(c.momentum >= 0 && c.momentum < 1, "--momentum {}: must be in [0, 1)", c.momentum);
  RTUNE_CHECK(c.beta1 >= 0 && c.beta1 < 1 && c.beta2 >= 0 && c.beta2 < 1, "--betas {},{}: each must be in [0, 1)",
              c.beta1, c.beta2);
  RTUNE_CHECK(c.eps > 0, "--eps {}: must be > 0", c.eps);
  RTUNE_CHECK(c.backbone_lr_mult >= 0, "--backbone-lr-mult {}: must be >= 0", c.backbone_lr_mult);
  RTUNE_CHECK(!c.nesterov || (c.kind == "sgd" && c.momentum > 0 && c.dampening == 0),
              "--nesterov needs --opt sgd with momentum > 0 and zero dampening (as torch.optim.SGD)");
}

std::vector<optim::ParamGroup> make_param_groups(models::ResNet& model, const OptimConfig& c, double lr) {
  // torch.optim keeps Adam's beta1 where SGD keeps momentum; schedulers cycle that one value.
  double momentum = (c.kind == "adam" || c.kind == "adamw") ? c.beta1 : c.momentum;
  optim::ParamGroup backbone{"backbone", {}, lr * c.backbone_lr_mult, c.weight_decay, momentum};
  optim::ParamGroup head{"head", {}, lr, c.weight_decay, momentum};
  for (auto& [name, p] : model.named_parameters()) {
    if (!p->requires_grad()) continue;
    (name.rfind("fc.", 0) == 0 ? head : backbone).params.push_back(p);
  }
  return {backbone, head};
}

std::unique_ptr<optim::Optimizer> make_optimizer(const OptimConfig& c, std::vector<optim::ParamGroup> groups) {
  validate(c);
  if (c.kind == "sgd") return std::make_unique<optim::SGD>(std::move(groups), c.dampening, c.nesterov);
  if (c.kind == "adam" || c.kind == "adamw")
    return std::make_unique<optim::Adam>(std::move(groups), c.beta2, c.eps, c.amsgrad, c.kind == "adamw");
  return std::make_unique<optim::RMSprop>(std::move(groups), c.alpha, c.eps, c.centered);
}

}  // namespace rtune::train
