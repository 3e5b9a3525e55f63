// Which parameters a fine-tuning run trains. Mirrors the usual PyTorch recipes: set requires_grad=False
// on the frozen parameters (the optimizer never sees them) and decide what their BatchNorm layers do.
//   none            train everything
//   backbone        train only the head (fc.*), the "feature extractor" tutorial
//   until=layer3    freeze conv1/bn1 and layer1..layer3, train layer4 + fc
//   PREFIX,PREFIX   freeze parameters whose name starts with any prefix (e.g. conv1,bn1,layer1)
// Frozen BatchNorm policy (`FrozenBN`): `eval` (the default) normalises with the running statistics
// and never updates them, as torchvision's FrozenBatchNorm2d and most fine-tuning tutorials that call
// .eval() on the backbone; `train` keeps PyTorch's plain behaviour when only requires_grad is cleared
// (batch statistics, running stats updated). A BN layer counts as frozen when its weight is frozen.
#pragma once
#include <string>
#include <string_view>
#include <vector>
#include "engine/nn/autocast.h"
#include "models/resnet.h"

namespace rtune::finetune {

struct FreezeSpec {
  enum class Kind { none, backbone, until, prefixes };
  Kind kind = Kind::none;
  std::string until;                  // "conv1", "bn1", "layer1".."layer4" (until=)
  std::vector<std::string> prefixes;  // prefixes=
  std::string str() const;            // the spec back, for logs and checkpoints
};

enum class FrozenBN { eval, train };

// Throws rtune::Error naming the spec and the accepted forms.
FreezeSpec parse_freeze(std::string_view spec);
FrozenBN parse_frozen_bn(std::string_view s);
std::string_view frozen_bn_name(FrozenBN p);

// True when parameter `name` (a torchvision state_dict key) is frozen under `spec`. The head (fc.*)
// is never frozen by `backbone` or `until=`.
bool is_frozen(const FreezeSpec& spec, const std::string& name);

struct FreezeResult {
  int64_t frozen_params = 0, trainable_params = 0;  // element counts
  int64_t frozen_bn_layers = 0;
  bool trains_below_head = false;  // some parameter outside fc trains (else the backbone needs no gradient)
  // Nothing below fc trains and the frozen BatchNorms use running statistics: the backbone is inference
  // (`with torch.no_grad(): backbone(x)`), its BNs fold (channels-last and fused on the oneDNN CPU).
  bool backbone_as_inference = false;
};
// Sets requires_grad on every parameter and use_running_stats on every BN layer per the spec and
// policy. Throws when a prefix matches no parameter (a typo would otherwise silently train all).
FreezeResult apply_freeze(models::ResNet& model, const FreezeSpec& spec, FrozenBN policy);

// One training forward under `precision`'s autocast on `device`: fc(features(x)), the features kept (the
// feature cache stores them); the backbone runs without gradient where `frozen.backbone_as_inference`.
struct TrainForward {
  Tensor features, logits;
};
TrainForward train_forward(models::ResNet& model, const Tensor& x, const FreezeResult& frozen, nn::Precision precision,
                           Device device);

}  // namespace rtune::finetune
