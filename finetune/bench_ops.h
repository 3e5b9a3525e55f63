// Benchmarks behind `rtune bench conv|train|infer`: they print figures; nothing here asserts a speed.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include "engine/device.h"

namespace rtune::finetune {

// conv2d forward / backward-input / backward-weight at ResNet-18 layer shapes (224 px), GFLOP/s.
// bf16_products: the CPU's bf16 convolutions (kernels::Conv2dArgs; CPU only, refused elsewhere).
void bench_conv(int64_t batch, int reps, Device device, bool bf16_products,
                const std::function<void(const std::string&)>& out);

// `rtune bench train` and `rtune bench infer`: one set of options (freeze_backbone and frozen_bn_eval
// matter to train only).
struct ModelBenchOptions {
  std::string arch = "resnet50";
  int64_t batch = 32, input = 224, width = 64, classes = 1000;
  int warmup = 2, steps = 5;
  int threads = 0;  // OpenMP threads for the CPU's work; 0: as OMP_NUM_THREADS or all cores
  bool freeze_backbone = false;
  // With freeze_backbone: the frozen BatchNorms normalise with their running statistics and the backbone
  // runs without gradient (folded, fused: `rtune train --frozen-bn eval`, its default); false keeps them
  // in train mode (batch statistics, as a PyTorch script's model.train()).
  bool frozen_bn_eval = true;
  std::string precision = "fp32";
  Device device = Device::cpu();
};
struct ModelBenchResult {
  double img_per_s = 0, step_ms = 0;
  double peak_device_bytes = 0;  // CUDA devices only
};
// Synthetic data, Adam, cross-entropy: warm-up steps then timed steps (forward, backward, update).
ModelBenchResult bench_train(const ModelBenchOptions& o, const std::function<void(const std::string&)>& out);
// Synthetic data, eval mode (BatchNorm on running statistics), no autograd recording: warm-up forwards,
// then timed forwards, as torch.no_grad() inference.
ModelBenchResult bench_infer(const ModelBenchOptions& o, const std::function<void(const std::string&)>& out);

}  // namespace rtune::finetune
