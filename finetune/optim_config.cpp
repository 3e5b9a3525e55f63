#include "finetune/optim_config.h"
#include <array>
#include <charconv>
#include <cmath>
#include <algorithm>

namespace rtune::finetune {

namespace {

constexpr std::array<std::string_view, 5> kStages = {"stem", "layer1", "layer2", "layer3", "layer4"};

// The stage a torchvision ResNet parameter belongs to: "head" for fc.*, "stem" for conv1/bn1.
std::string_view stage_of(const std::string& name) {
  if (name.rfind("fc.", 0) == 0) return "head";
  for (size_t i = 1; i < kStages.size(); ++i)
    if (name.rfind(std::string(kStages[i]) + ".", 0) == 0) return kStages[i];
  return "stem";
}

}  // namespace

std::vector<std::pair<std::string, double>> parse_lr_mult(const std::string& spec) {
  std::vector<std::pair<std::string, double>> out;
  size_t pos = 0;
  while (pos < spec.size()) {
    size_t end = spec.find(',', pos);
    if (end == std::string::npos) end = spec.size();
    const std::string item = spec.substr(pos, end - pos);
    pos = end + 1;
    const size_t eq = item.find('=');
    if (eq == std::string::npos)
      fail("--lr-mult '{}': item '{}' is not STAGE=MULTIPLIER (e.g. layer4=0.5,backbone=0.1)", spec, item);
    const std::string stage = item.substr(0, eq), value = item.substr(eq + 1);
    if (stage != "backbone" && std::find(kStages.begin(), kStages.end(), stage) == kStages.end())
      fail("--lr-mult '{}': unknown stage '{}' (stem, layer1, layer2, layer3, layer4 or backbone; the head "
           "trains at --lr)", spec, stage);
    double m = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), m);
    if (ec != std::errc{} || ptr != value.data() + value.size() || !std::isfinite(m) || m < 0)
      fail("--lr-mult '{}': '{}' needs a finite multiplier >= 0, got '{}'", spec, stage, value);
    for (auto& [s, v] : out)
      if (s == stage) fail("--lr-mult '{}': stage '{}' is given twice", spec, stage);
    out.emplace_back(stage, m);
  }
  return out;
}

std::string lr_mult_str(const std::vector<std::pair<std::string, double>>& m) {
  std::string s;
  for (auto& [stage, v] : m) s += fmt::format("{}{}={}", s.empty() ? "" : ",", stage, v);
  return s;
}

nlohmann::json OptimConfig::to_json() const {
  return {{"kind", kind}, {"lr", lr}, {"weight_decay", weight_decay}, {"momentum", momentum},
          {"dampening", dampening}, {"nesterov", nesterov}, {"beta1", beta1}, {"beta2", beta2}, {"eps", eps},
          {"amsgrad", amsgrad}, {"alpha", alpha}, {"centered", centered}, {"lr_mult", lr_mult_str(lr_mult)}};
}

void validate(const OptimConfig& c) {
  if (c.kind != "sgd" && c.kind != "adam" && c.kind != "adamw" && c.kind != "rmsprop")
    invalid_argument("--opt '{}': expected sgd, adam, adamw or rmsprop", c.kind);
  if (!(c.lr > 0)) invalid_argument("--lr {}: must be > 0", c.lr);
  if (!(c.weight_decay >= 0)) invalid_argument("--wd {}: must be >= 0", c.weight_decay);
  if (!(c.momentum >= 0 && c.momentum < 1)) invalid_argument("--momentum {}: must be in [0, 1)", c.momentum);
  if (!(c.beta1 >= 0 && c.beta1 < 1 && c.beta2 >= 0 && c.beta2 < 1))
    invalid_argument("--betas {},{}: each must be in [0, 1)", c.beta1, c.beta2);
  if (!(c.eps > 0)) invalid_argument("--eps {}: must be > 0", c.eps);
  try {
    parse_lr_mult(lr_mult_str(c.lr_mult));  // the same checks for a config built in code
  } catch (const InvalidArgument&) {
    throw;
  } catch (const Error& e) {
    throw InvalidArgument(e.what());
  }
  if (c.nesterov && !(c.kind == "sgd" && c.momentum > 0 && c.dampening == 0))
    invalid_argument("--nesterov needs --opt sgd with momentum > 0 and zero dampening (as torch.optim.SGD)");
}

std::vector<optim::ParamGroup> make_param_groups(models::ResNet& model, const OptimConfig& c, double lr) {
  // torch.optim keeps Adam's beta1 where SGD keeps momentum; schedulers cycle that one value.
  double momentum = (c.kind == "adam" || c.kind == "adamw") ? c.beta1 : c.momentum;
  double fallback = 1.0;
  for (auto& [s, v] : c.lr_mult)
    if (s == "backbone") fallback = v;
  auto mult_of = [&](std::string_view stage) {
    for (auto& [s, v] : c.lr_mult)
      if (s == stage) return v;
    return fallback;
  };
  // One group per distinct multiplier, in network order; stage_group[i] indexes `groups`.
  std::vector<optim::ParamGroup> groups;
  std::vector<double> group_mult;
  std::array<size_t, kStages.size()> stage_group{};
  for (size_t i = 0; i < kStages.size(); ++i) {
    const double m = mult_of(kStages[i]);
    auto it = std::find(group_mult.begin(), group_mult.end(), m);
    if (it == group_mult.end()) {
      groups.push_back({std::string(kStages[i]), {}, lr * m, c.weight_decay, momentum});
      group_mult.push_back(m);
      it = group_mult.end() - 1;
    } else {
      auto& name = groups[size_t(it - group_mult.begin())].name;
      name.push_back('+');
      name.append(kStages[i]);
    }
    stage_group[i] = size_t(it - group_mult.begin());
  }
  if (groups.size() == 1) groups[0].name = "backbone";
  groups.push_back({"head", {}, lr, c.weight_decay, momentum});
  for (auto& [name, p] : model.named_parameters()) {
    if (!p->requires_grad()) continue;
    const auto stage = stage_of(name);
    if (stage == "head") groups.back().params.push_back(p);
    else groups[stage_group[size_t(std::find(kStages.begin(), kStages.end(), stage) - kStages.begin())]].params.push_back(p);
  }
  return groups;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const OptimConfig& c, std::vector<optim::ParamGroup> groups) {
  if (c.kind == "sgd") return std::make_unique<optim::SGD>(std::move(groups), c.dampening, c.nesterov);
  if (c.kind == "adam" || c.kind == "adamw")
    return std::make_unique<optim::Adam>(std::move(groups), c.beta2, c.eps, c.amsgrad, c.kind == "adamw");
  if (c.kind == "rmsprop") return std::make_unique<optim::RMSprop>(std::move(groups), c.alpha, c.eps, c.centered);
  fail("--opt '{}': expected sgd, adam, adamw or rmsprop", c.kind);
}

}  // namespace rtune::finetune
