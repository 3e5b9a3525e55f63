// What oneDNN found this CPU can do, without dnnl.hpp (kernels/cpu/backend.cpp asks). oneDNN detects the
// ISA at run time, capped by ONEDNN_MAX_CPU_ISA: one binary serves AVX2 and AVX-512 machines.
#pragma once

namespace rtune::cpu::onednn {

enum class Isa {
  avx512_core,       // AVX-512: oneDNN's bf16 convolutions (emulated without AVX512_BF16), fast nhwc kernels
  avx512_core_bf16,  // AVX512_BF16 (or AMX): bf16 multiplies in hardware
};
// Whether oneDNN's effective ISA (what it detected, capped by ONEDNN_MAX_CPU_ISA) includes `isa`.
bool isa_has(Isa isa);

}  // namespace rtune::cpu::onednn
