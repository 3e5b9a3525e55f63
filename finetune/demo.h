// `rtune demo`: the whole fine-tuning story on generated data, no download. Task A (4 shapes) is the
// "ImageNet" a ResNet-18 is pretrained on; task B (3 shape families, including shapes A never showed,
// with few labelled images) is the user's problem. B is trained three ways: pretrained with a frozen
// backbone (only a new head learns), pretrained with every layer fine-tuned, and from scratch, and a
// report compares them.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

namespace rtune::finetune {

struct DemoOptions {
  std::filesystem::path out = "rtune-demo";
  int size = 32;              // image side in pixels
  int64_t width = 16;         // ResNet-18 base width (torchvision's is 64; reduced to fit 2 CPU cores)
  int per_class_a = 250, per_class_b = 30, val_per_class = 25;
  int64_t epochs_a = 10, epochs_b = 10;
  uint64_t seed = 0;
  int threads = 0;
  std::string device = "auto";
};

// Returns the path of the comparison report.
std::filesystem::path run_demo(const DemoOptions& o);

}  // namespace rtune::finetune
