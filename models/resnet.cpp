#include "models/resnet.h"
#include <map>
#include <set>
#include "engine/functional.h"
#include "engine/printable.h"

namespace rtune::models {

bool is_bottleneck_arch(const std::string& arch) { return arch == "resnet50" || arch == "resnet101" || arch == "resnet152"; }

std::array<int64_t, 4> arch_layers(const std::string& arch) {
  static const std::map<std::string, std::array<int64_t, 4>> table = {
      {"resnet18", {2, 2, 2, 2}}, {"resnet34", {3, 4, 6, 3}}, {"resnet50", {3, 4, 6, 3}},
      {"resnet101", {3, 4, 23, 3}}, {"resnet152", {3, 8, 36, 3}}};
  auto it = table.find(arch);
  RTUNE_CHECK(it != table.end(), "unknown architecture '{}' (expected resnet18, resnet34, resnet50, resnet101 or resnet152)",
              printable(arch));
  return it->second;
}

namespace {
// torchvision's downsample = nn.Sequential(conv1x1, BatchNorm2d): children named "0" and "1".
class Downsample : public nn::Module {
 public:
  Downsample(std::shared_ptr<nn::Conv2d> c, std::shared_ptr<nn::BatchNorm2d> n) {
    register_module("0", std::move(c));
    register_module("1", std::move(n));
  }
};
}  // namespace

BasicBlock::BasicBlock(int64_t in, int64_t planes, int64_t stride, Rng& rng) {
  conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(in, planes, 3, stride, 1, false, rng));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(planes));
  conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(planes, planes, 3, 1, 1, false, rng));
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(planes));
  if (stride != 1 || in != planes * expansion) {
    down_conv = std::make_shared<nn::Conv2d>(in, planes * expansion, 1, stride, 0, false, rng);
    down_bn = std::make_shared<nn::BatchNorm2d>(planes * expansion);
    register_module("downsample", std::make_shared<Downsample>(down_conv, down_bn));
  }
}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor out = nn::conv_bn_relu(*conv1, *bn1, x);
  Tensor identity = down_conv ? nn::conv_bn(*down_conv, *down_bn, x) : x;
  return nn::conv_bn_add_relu(*conv2, *bn2, out, identity);  // relu(bn2(conv2(out)) + identity)
}

Bottleneck::Bottleneck(int64_t in, int64_t planes, int64_t stride, Rng& rng) {
  conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(in, planes, 1, 1, 0, false, rng));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(planes));
  conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(planes, planes, 3, stride, 1, false, rng));
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(planes));
  conv3 = register_module("conv3", std::make_shared<nn::Conv2d>(planes, planes * expansion, 1, 1, 0, false, rng));
  bn3 = register_module("bn3", std::make_shared<nn::BatchNorm2d>(planes * expansion));
  if (stride != 1 || in != planes * expansion) {
    down_conv = std::make_shared<nn::Conv2d>(in, planes * expansion, 1, stride, 0, false, rng);
    down_bn = std::make_shared<nn::BatchNorm2d>(planes * expansion);
    register_module("downsample", std::make_shared<Downsample>(down_conv, down_bn));
  }
}

Tensor Bottleneck::forward(const Tensor& x) {
  Tensor out = nn::conv_bn_relu(*conv1, *bn1, x);
  out = nn::conv_bn_relu(*conv2, *bn2, out);
  Tensor identity = down_conv ? nn::conv_bn(*down_conv, *down_bn, x) : x;
  return nn::conv_bn_add_relu(*conv3, *bn3, out, identity);  // relu(bn3(conv3(out)) + identity)
}

void Stage::add(std::shared_ptr<nn::Module> block, std::function<Tensor(const Tensor&)> fwd, const std::string& name) {
  register_module(name, std::move(block));
  blocks_.push_back(std::move(fwd));
}

Tensor Stage::forward(const Tensor& x) {
  Tensor h = x;
  for (auto& f : blocks_) h = f(h);
  return h;
}

ResNet::ResNet(const ResNetConfig& cfg) : cfg_(cfg) {
  std::array<int64_t, 4> counts = arch_layers(cfg.arch);
  RTUNE_CHECK(cfg.width > 0 && cfg.num_classes > 0, "resnet: width and class count must be positive");
  Rng rng(cfg.seed);
  bool bottleneck = is_bottleneck_arch(cfg.arch);
  int64_t expansion = bottleneck ? Bottleneck::expansion : BasicBlock::expansion;
  conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(3, cfg.width, 7, 2, 3, false, rng));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(cfg.width));
  int64_t in = cfg.width;
  for (int s = 0; s < 4; ++s) {
    auto stage = std::make_shared<Stage>();
    int64_t planes = cfg.width << s;
    for (int64_t b = 0; b < counts[size_t(s)]; ++b) {
      int64_t stride = (b == 0 && s > 0) ? 2 : 1;
      if (bottleneck) {
        auto blk = std::make_shared<Bottleneck>(in, planes, stride, rng);
        if (cfg.zero_init_residual) blk->last_bn()->weight.detach().zero_();
        stage->add(blk, [blk](const Tensor& x) { return blk->forward(x); }, std::to_string(b));
      } else {
        auto blk = std::make_shared<BasicBlock>(in, planes, stride, rng);
        if (cfg.zero_init_residual) blk->last_bn()->weight.detach().zero_();
        stage->add(blk, [blk](const Tensor& x) { return blk->forward(x); }, std::to_string(b));
      }
      in = planes * expansion;
    }
    layers[size_t(s)] = register_module("layer" + std::to_string(s + 1), stage);
  }
  feature_dim_ = in;
  fc = register_module("fc", std::make_shared<nn::Linear>(in, cfg.num_classes, true, rng));
}

Tensor ResNet::features(const Tensor& x) {
  RTUNE_CHECK(x.dim() == 4 && x.size(1) == 3, "resnet: expected an N×3×H×W image batch, got {}", x.str());
  Tensor h = nn::conv_bn_relu(*conv1, *bn1, x);
  h = max_pool2d(h, {3, 3, 2, 2, 1, 1});
  for (auto& l : layers) h = l->forward(h);
  return adaptive_avg_pool2d(h, 1, 1).flatten(1);
}

Tensor ResNet::forward(const Tensor& x) { return fc->forward(features(x)); }

void ResNet::reset_head(int64_t num_classes, uint64_t seed) {
  Rng rng(seed);
  Device dev = fc->weight.device();
  DType dt = fc->weight.dtype();
  auto fresh = std::make_shared<nn::Linear>(feature_dim_, num_classes, true, rng);
  fresh->to(dt);
  fresh->to(dev);
  // Keep the registered slot (named "fc") pointing at the live tensors.
  fc->weight = fresh->weight;
  fc->bias = fresh->bias;
  cfg_.num_classes = num_classes;
}

InferredArch infer_arch(const std::vector<std::pair<std::string, Shape>>& keys) {
  std::map<std::string, Shape> m(keys.begin(), keys.end());
  auto need = [&](const std::string& k) -> const Shape& {
    auto it = m.find(k);
    RTUNE_CHECK(it != m.end(), "cannot infer the architecture: no '{}' among the weights (is this a torchvision ResNet?)", k);
    return it->second;
  };
  InferredArch a;
  a.width = need("conv1.weight")[0];
  a.num_classes = need("fc.weight")[0];
  bool bottleneck = m.count("layer1.0.conv3.weight") > 0;
  std::array<int64_t, 4> counts{};
  for (int s = 0; s < 4; ++s) {
    while (m.count("layer" + std::to_string(s + 1) + "." + std::to_string(counts[size_t(s)]) + ".conv1.weight"))
      ++counts[size_t(s)];
  }
  for (const char* arch : {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"}) {
    if (arch_layers(arch) == counts && is_bottleneck_arch(arch) == bottleneck) a.arch = arch;
  }
  RTUNE_CHECK(!a.arch.empty(), "cannot infer the architecture: blocks per stage {}/{}/{}/{} ({}) match no ResNet",
              counts[0], counts[1], counts[2], counts[3], bottleneck ? "bottleneck" : "basic");
  return a;
}

}  // namespace rtune::models
