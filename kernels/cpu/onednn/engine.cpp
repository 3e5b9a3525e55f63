#include "kernels/cpu/onednn/engine.h"
#include "kernels/cpu/onednn/isa.h"

namespace rtune::cpu::onednn {

namespace {
// oneDNN's ISA values are cumulative bit sets: a CPU has `isa` when all of its bits are present.
bool effective_isa_has(dnnl::cpu_isa isa) {
  const auto have = unsigned(dnnl::get_effective_cpu_isa()), want = unsigned(isa);
  return (have & want) == want;
}
}  // namespace

bool isa_has_native_bf16() { return effective_isa_has(dnnl::cpu_isa::avx512_core_bf16); }
bool isa_has_bf16_kernels() { return effective_isa_has(dnnl::cpu_isa::avx512_core); }

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& cpu_stream() {
  thread_local dnnl::stream s(cpu_engine());
  return s;
}

}  // namespace rtune::cpu::onednn
