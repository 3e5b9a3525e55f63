// What oneDNN found this CPU can do, without dnnl.hpp (kernels/cpu/backend.cpp asks). oneDNN detects the
// ISA at run time, capped by ONEDNN_MAX_CPU_ISA: one binary serves AVX2 and AVX-512 machines.
#pragma once

namespace rtune::cpu::onednn {

bool isa_has_native_bf16();   // AVX512_BF16 or AMX: bf16 multiplies in hardware
bool isa_has_bf16_kernels();  // AVX-512: oneDNN's bf16 convolutions (emulated without AVX512_BF16)

}  // namespace rtune::cpu::onednn
