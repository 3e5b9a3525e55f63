// Argument structs of the op façade, shared by every backend.
#pragma once
#include <cstdint>

namespace rtune::kernels {

struct Conv2dArgs {
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
};

struct Pool2dArgs {
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};

enum class Reduction : uint8_t { mean, sum };

}  // namespace rtune::kernels
