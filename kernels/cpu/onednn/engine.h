// The oneDNN CPU engine and a stream per calling thread, created on first use. Only kernels/cpu/onednn/
// includes this (and with it dnnl.hpp): nothing above kernels/ sees oneDNN.
#pragma once
#include <dnnl.hpp>

namespace rtune::cpu::onednn {

dnnl::engine& cpu_engine();
dnnl::stream& cpu_stream();  // in-order; execute() then wait() keeps the call synchronous, as Eigen's

}  // namespace rtune::cpu::onednn
