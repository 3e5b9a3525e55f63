// ResNet-18/34/50/101/152 exactly as torchvision.models.resnet builds them: BasicBlock / Bottleneck
// (stride on the 3×3, "ResNet v1.5"), downsample = 1×1 conv + BN, any base width and class count.
// Parameter and buffer names are torchvision's state_dict keys (conv1, bn1, layer1.0.conv1, …, fc).
#pragma once
#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>
#include "engine/nn/module.h"

namespace rtune::models {

struct ResNetConfig {
  std::string arch = "resnet18";  // resnet18|34|50|101|152
  int64_t width = 64;             // base width (torchvision: 64; the tiny fixtures: 8)
  int64_t num_classes = 1000;
  bool zero_init_residual = false;
  uint64_t seed = 0;              // initialisation RNG
};

bool is_bottleneck_arch(const std::string& arch);
std::array<int64_t, 4> arch_layers(const std::string& arch);  // throws naming the supported archs

class BasicBlock : public nn::Module {
 public:
  static constexpr int64_t expansion = 1;
  BasicBlock(int64_t in, int64_t planes, int64_t stride, Rng& rng);
  Tensor forward(const Tensor& x);
  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2;
  std::shared_ptr<nn::Conv2d> down_conv;  // downsample.0
  std::shared_ptr<nn::BatchNorm2d> down_bn;  // downsample.1
  nn::BatchNorm2d* last_bn() { return bn2.get(); }
};

class Bottleneck : public nn::Module {
 public:
  static constexpr int64_t expansion = 4;
  Bottleneck(int64_t in, int64_t planes, int64_t stride, Rng& rng);
  Tensor forward(const Tensor& x);
  std::shared_ptr<nn::Conv2d> conv1, conv2, conv3;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2, bn3;
  std::shared_ptr<nn::Conv2d> down_conv;
  std::shared_ptr<nn::BatchNorm2d> down_bn;
  nn::BatchNorm2d* last_bn() { return bn3.get(); }
};

// A stage ("layer1".."layer4"): blocks named 0, 1, 2, …
class Stage : public nn::Module {
 public:
  void add(std::shared_ptr<nn::Module> block, std::function<Tensor(const Tensor&)> fwd, const std::string& name);
  Tensor forward(const Tensor& x);
 private:
  std::vector<std::function<Tensor(const Tensor&)>> blocks_;
};

class ResNet : public nn::Module {
 public:
  explicit ResNet(const ResNetConfig& cfg);
  Tensor forward(const Tensor& x);           // logits N×num_classes
  Tensor features(const Tensor& x);          // N×feature_dim, before fc
  // Replaces fc with a fresh nn.Linear-initialised head of `num_classes` outputs.
  void reset_head(int64_t num_classes, uint64_t seed);
  const ResNetConfig& config() const { return cfg_; }
  int64_t feature_dim() const { return feature_dim_; }

  std::shared_ptr<nn::Conv2d> conv1;
  std::shared_ptr<nn::BatchNorm2d> bn1;
  std::array<std::shared_ptr<Stage>, 4> layers;
  std::shared_ptr<nn::Linear> fc;

 private:
  ResNetConfig cfg_;
  int64_t feature_dim_ = 0;
};

// Infers arch, width and class count from torchvision state_dict keys and shapes (for `convert`).
struct InferredArch {
  std::string arch;
  int64_t width = 0, num_classes = 0;
};
InferredArch infer_arch(const std::vector<std::pair<std::string, Shape>>& keys);

}  // namespace rtune::models
