// Mixed precision in the style of torch.autocast(device_type="cuda", dtype=torch.bfloat16) plus
// channels-last: while an Autocast scope is live on this thread, Conv2d and Linear compute in its
// dtype and memory format. Their master weights (fp32) and inputs are cast per call through the
// differentiable `cast`, so weight gradients arrive back in fp32; BatchNorm keeps fp32 parameters and
// statistics on the lower-precision activations; the caller computes the loss in fp32. On the CPU a bf16
// scope keeps every tensor fp32 and only the convolutions' products in bf16 (ComputeMode). Outside a
// scope, modules compute in their parameters' dtype and the input's layout.
#pragma once
#include <string>
#include "engine/tensor.h"

namespace rtune::nn {

enum class Precision { fp32, bf16 };

struct ComputeMode {
  DType dtype = DType::f32;
  MemoryFormat format = MemoryFormat::contiguous;
  // CPU bf16: tensors stay fp32 and Conv2d takes its products in bf16 (kernels::Conv2dArgs); BatchNorm,
  // ReLU, pooling and the fc stay fp32 (torch.autocast on the CPU runs the fc in bf16 too: it is <0.1% of
  // ResNet's multiply-adds).
  bool bf16_conv_products = false;
  // CPU: tensors keep their dtype (`dtype` is float32's) and float64 ones their layout too (the Eigen
  // oracle computes float64, NCHW); only float32 activations take `format`: oneDNN reorders the weights
  // into its own layout whatever theirs, so a cast of the weights would be one more copy a step.
  bool cpu_keeps_dtype = false;
  Tensor in_mode(const Tensor& t) const;     // an activation as Conv2d computes it: dtype and format
  Tensor in_weight(const Tensor& w) const;   // a weight as Conv2d computes with it: format only on CUDA
  Tensor in_dtype(const Tensor& t) const;    // dtype only (biases, Linear)
};

// "auto" picks bf16 where the device has it in hardware: a CUDA device of compute capability >= 8.0, a
// CPU with AVX512_BF16 or AMX (on oneDNN); fp32 otherwise. Throws rtune::Error for an unknown name, or
// bf16 where the device lacks it.
Precision parse_precision(const std::string& name, Device device);
const char* precision_name(Precision p);

// What a run on `device` computes in: on CUDA, channels-last in the precision's dtype (cuDNN's fast
// NHWC kernels); on the CPU with the oneDNN backend, float32 channels-last (kernels::channels_last_compute:
// no reorder per convolution, in training and inference alike), with bf16 convolution products in bf16;
// on the CPU without oneDNN, bf16 cannot run and fp32 changes nothing (returns false).
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
