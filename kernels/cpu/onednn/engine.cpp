#include "kernels/cpu/onednn/engine.h"
#include "kernels/cpu/onednn/isa.h"

namespace rtune::cpu::onednn {

// oneDNN's ISA values are cumulative bit sets: a CPU has `isa` when all of its bits are present.
bool isa_has(Isa isa) {
  const dnnl::cpu_isa want_isa = isa == Isa::avx512_core ? dnnl::cpu_isa::avx512_core : dnnl::cpu_isa::avx512_core_bf16;
  const auto have = unsigned(dnnl::get_effective_cpu_isa()), want = unsigned(want_isa);
  return (have & want) == want;
}

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& cpu_stream() {
  thread_local dnnl::stream s(cpu_engine());
  return s;
}

}  // namespace rtune::cpu::onednn
