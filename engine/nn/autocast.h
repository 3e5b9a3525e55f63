// Mixed precision in the style of torch.autocast(device_type="cuda", dtype=torch.bfloat16) plus
// channels-last: while an Autocast scope is live on this thread, Conv2d and Linear compute in its
// dtype and memory format. Their master weights (fp32) and inputs are cast per call through the
// differentiable `cast`, so weight gradients arrive back in fp32; BatchNorm keeps fp32 parameters and
// statistics on the lower-precision activations; the caller computes the loss in fp32. Outside a
// scope, modules compute in their parameters' dtype and the input's layout.
#pragma once
#include <string>
#include "engine/tensor.h"

namespace rtune::nn {

enum class Precision { fp32, bf16 };

struct ComputeMode {
  DType dtype = DType::f32;
  MemoryFormat format = MemoryFormat::contiguous;
};

// "auto" picks bf16 on a CUDA device that has it (compute capability >= 8.0), fp32 otherwise.
// Throws rtune::Error for an unknown name, or bf16 where the device lacks it (the CPU backend is fp32/fp64).
Precision parse_precision(const std::string& name, Device device);
const char* precision_name(Precision p);

// What a run on `device` computes in: on CUDA, channels-last in the precision's dtype (cuDNN's fast
// NHWC kernels); on the CPU, nothing to change (returns false).
bool compute_mode_for(Precision p, Device device, ComputeMode& mode);

class Autocast {
 public:
  explicit Autocast(const ComputeMode& mode);
  Autocast(Precision p, Device device);  // a no-op scope where compute_mode_for() says nothing changes
  ~Autocast();
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;

 private:
  const ComputeMode* prev_;
  ComputeMode mode_;
};

const ComputeMode* autocast_mode();  // the innermost live scope's mode, nullptr outside any

}  // namespace rtune::nn
