#include "engine/nn/autocast.h"
#include "engine/autograd.h"
#include "engine/functional.h"
#include "kernels/ops.h"

namespace rtune::nn {

namespace {
thread_local const ComputeMode* t_mode = nullptr;
}

Precision parse_precision(const std::string& name, Device device) {
  const bool has_bf16 = kernels::supports_bf16(device);
  if (name == "auto") return has_bf16 ? Precision::bf16 : Precision::fp32;
  if (name == "fp32") return Precision::fp32;
  if (name == "bf16") {
    RTUNE_CHECK(has_bf16, "--precision bf16: {} cannot train in bfloat16 ({}); use --precision fp32", device.str(),
                device.is_cpu() ? "it needs a CPU with AVX512_BF16 or AMX, and the oneDNN backend"
                                : "it needs compute capability 8.0 or later");
    return Precision::bf16;
  }
  fail("--precision '{}': expected auto, fp32 or bf16", name);
}

const char* precision_name(Precision p) { return p == Precision::bf16 ? "bf16" : "fp32"; }

bool compute_mode_for(Precision p, Device device, ComputeMode& mode) {
  if (device.is_cpu()) {
    const bool channels_last = kernels::channels_last_compute(device);
    if (p != Precision::bf16 && !channels_last) return false;
    mode = {DType::f32, channels_last ? MemoryFormat::channels_last : MemoryFormat::contiguous, p == Precision::bf16, true};
    return true;
  }
  if (!device.is_cuda()) return false;
  mode = {p == Precision::bf16 ? DType::bf16 : DType::f32, MemoryFormat::channels_last};
  return true;
}

Tensor ComputeMode::in_mode(const Tensor& t) const {
  if (cpu_keeps_dtype && t.dtype() != DType::f32) return t;
  return cast(t, dtype, format);
}

Tensor ComputeMode::in_weight(const Tensor& w) const { return cpu_keeps_dtype ? in_dtype(w) : in_mode(w); }

Tensor ComputeMode::in_dtype(const Tensor& t) const {
  if (!t.defined() || (cpu_keeps_dtype && t.dtype() != DType::f32)) return t;
  return cast(t, dtype);
}

Autocast::Autocast(const ComputeMode& mode) : prev_(t_mode), mode_(mode) { t_mode = &mode_; }

Autocast::Autocast(Precision p, Device device) : prev_(t_mode) {
  if (compute_mode_for(p, device, mode_)) t_mode = &mode_;
}

Autocast::~Autocast() { t_mode = prev_; }

const ComputeMode* autocast_mode() { return t_mode; }

}  // namespace rtune::nn
