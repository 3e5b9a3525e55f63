#include "finetune/freeze.h"
#include <optional>
#include <fmt/format.h>
#include "engine/autograd.h"

namespace rtune::finetune {

namespace {
constexpr const char* kUsage = "expected none | backbone | until=conv1|bn1|layer1..layer4 | PREFIX[,PREFIX...]";
bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
// A prefix matches a whole dotted component: "layer1" matches "layer1.0.conv1.weight", not "layer10.…".
bool prefix_matches(const std::string& name, const std::string& prefix) {
  if (!starts_with(name, prefix)) return false;
  return name.size() == prefix.size() || prefix.back() == '.' || name[prefix.size()] == '.';
}
int stage_order(const std::string& top) {  // position of a top-level module in the forward pass
  static const char* order[] = {"conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"};
  for (int i = 0; i < 7; ++i)
    if (top == order[i]) return i;
  return -1;
}
}  // namespace

std::string FreezeSpec::str() const {
  switch (kind) {
    case Kind::none: return "none";
    case Kind::backbone: return "backbone";
    case Kind::until: return "until=" + until;
    case Kind::prefixes: return fmt::format("{}", fmt::join(prefixes, ","));
  }
  return "?";
}

FreezeSpec parse_freeze(std::string_view spec) {
  FreezeSpec f;
  std::string s(spec);
  if (s.empty()) fail("--freeze: empty spec; {}", kUsage);
  if (s == "none") return f;
  if (s == "backbone") {
    f.kind = FreezeSpec::Kind::backbone;
    return f;
  }
  if (starts_with(s, "until=")) {
    f.kind = FreezeSpec::Kind::until;
    f.until = s.substr(6);
    int o = stage_order(f.until);
    if (o < 0 || f.until == "fc") fail("--freeze '{}': '{}' is not conv1, bn1 or layer1..layer4", s, f.until);
    return f;
  }
  f.kind = FreezeSpec::Kind::prefixes;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    std::string p = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (p.empty() || p.find_first_of(" =") != std::string::npos) fail("--freeze '{}': bad prefix '{}'; {}", s, p, kUsage);
    f.prefixes.push_back(p);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return f;
}

FrozenBN parse_frozen_bn(std::string_view s) {
  if (s == "eval") return FrozenBN::eval;
  if (s == "train") return FrozenBN::train;
  fail("--frozen-bn '{}': expected eval (use running stats, the default) or train", s);
}

std::string_view frozen_bn_name(FrozenBN p) { return p == FrozenBN::eval ? "eval" : "train"; }

bool is_frozen(const FreezeSpec& spec, const std::string& name) {
  const std::string top = name.substr(0, name.find('.'));
  switch (spec.kind) {
    case FreezeSpec::Kind::none: return false;
    case FreezeSpec::Kind::backbone: return top != "fc";
    case FreezeSpec::Kind::until: {
      int o = stage_order(top);
      return o >= 0 && top != "fc" && o <= stage_order(spec.until);
    }
    case FreezeSpec::Kind::prefixes:
      for (const auto& p : spec.prefixes)
        if (prefix_matches(name, p)) return true;
      return false;
  }
  return false;
}

FreezeResult apply_freeze(models::ResNet& model, const FreezeSpec& spec, FrozenBN policy) {
  FreezeResult r;
  auto params = model.named_parameters();
  if (spec.kind == FreezeSpec::Kind::prefixes) {
    for (const auto& p : spec.prefixes) {
      bool hit = false;
      for (auto& [name, t] : params) hit = hit || prefix_matches(name, p);
      if (!hit) fail("--freeze: prefix '{}' matches no parameter (names look like conv1.weight, layer1.0.bn1.bias, fc.weight)", p);
    }
  }
  for (auto& [name, t] : params) {
    bool frozen = is_frozen(spec, name);
    t->set_requires_grad(!frozen);
    t->zero_grad();
    (frozen ? r.frozen_params : r.trainable_params) += t->numel();
    r.trains_below_head = r.trains_below_head || (!frozen && name.rfind("fc.", 0) != 0);
  }
  for (auto& [name, m] : model.named_modules()) {
    auto* bn = dynamic_cast<nn::BatchNorm2d*>(m);
    if (!bn) continue;
    bool frozen = is_frozen(spec, name + ".weight");
    bn->use_running_stats = frozen && policy == FrozenBN::eval;
    r.frozen_bn_layers += frozen;
  }
  r.backbone_as_inference = !r.trains_below_head && policy == FrozenBN::eval;
  return r;
}

TrainForward train_forward(models::ResNet& model, const Tensor& x, const FreezeResult& frozen, nn::Precision precision,
                           Device device) {
  TrainForward f;
  {
    std::optional<NoGradGuard> backbone_inference;
    if (frozen.backbone_as_inference) backbone_inference.emplace();
    nn::Autocast autocast(precision, device);
    f.features = model.features(x);  // model.forward(x) is fc(features(x)): split to keep the features
  }
  nn::Autocast autocast(precision, device);
  f.logits = model.fc->forward(f.features);
  return f;
}

}  // namespace rtune::finetune
