// Argument structs of the op façade, shared by every backend.
#pragma once
#include <cstdint>

#include "kernels/update_rules.h"

namespace rtune {
class Tensor;
}

namespace rtune::kernels {

struct Conv2dArgs {
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  // Forward only: true when no gradient will be taken through this call (no-grad, or nothing it reads
  // requires grad: frozen layers, eval), so a library may use its inference kernels. Same result.
  bool inference = false;
  // CPU, float32 tensors only: take the products in bfloat16, as torch.autocast's bf16 convolutions do
  // (the inputs and weights rounded to bf16, their exact products summed in float32), while every tensor
  // in and out stays float32. oneDNN rounds on the reorder into its layout that it makes anyway, so the
  // rounding costs no pass of its own. (CUDA computes bf16 through bf16 tensors instead: autocast.)
  bool bf16_products = false;
};

struct Pool2dArgs {
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};

enum class Reduction : uint8_t { mean, sum };

// One parameter of a list optimizer update (sgd/adam/rmsprop_update_many, PyTorch's multi-tensor
// "foreach"/"fused" step). The slot borrows the tensors: they must outlive the call. A state pointer is
// null when its configuration never touches it (momentum_buf when momentum == 0, max_exp_avg_sq without
// amsgrad, grad_avg when not centered); otherwise it names a tensor shaped, typed and placed as param.
// Hyper-parameters are per slot: parameter groups differ in lr, and Adam keeps a step count per parameter.
struct SgdSlot {
  Tensor* param = nullptr;
  const Tensor* grad = nullptr;
  Tensor* momentum_buf = nullptr;
  optim::SgdHyper hyper;
  bool first_step = false;  // PyTorch's "momentum_buffer is None": the buffer starts as the gradient
};
struct AdamSlot {
  Tensor* param = nullptr;
  const Tensor* grad = nullptr;
  Tensor* exp_avg = nullptr;
  Tensor* exp_avg_sq = nullptr;
  Tensor* max_exp_avg_sq = nullptr;
  optim::AdamStep step;  // make_adam_step(hyper, this parameter's step count)
};
struct RmspropSlot {
  Tensor* param = nullptr;
  const Tensor* grad = nullptr;
  Tensor* square_avg = nullptr;
  Tensor* grad_avg = nullptr;
  Tensor* momentum_buf = nullptr;
  optim::RmspropHyper hyper;
};

}  // namespace rtune::kernels
