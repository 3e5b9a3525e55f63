// ToTensor + Normalize as torchvision does them for a PIL image: CHW float32 = uint8 / 255 (a float32
// division), then (x - mean) / std with mean and std as float32 (Tensor.sub_ then div_).
#pragma once
#include <array>
#include <span>
#include <vector>

#include "io/image/image.h"

namespace rtune::io {

struct Normalize {
  std::array<float, 3> mean{0.f, 0.f, 0.f};
  std::array<float, 3> std{1.f, 1.f, 1.f};
};

inline constexpr Normalize kImageNetNormalize{{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};

// Writes 3*H*W floats, CHW. `norm` absent: plain ToTensor.
void to_tensor(const Image& img, std::span<float> out_chw, const Normalize* norm = nullptr);
std::vector<float> to_tensor(const Image& img, const Normalize* norm = nullptr);

}  // namespace rtune::io
