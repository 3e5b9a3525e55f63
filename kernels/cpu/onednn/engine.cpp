#include "kernels/cpu/onednn/engine.h"

namespace rtune::cpu::onednn {

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& cpu_stream() {
  thread_local dnnl::stream s(cpu_engine());
  return s;
}

}  // namespace rtune::cpu::onednn
