// Minimal stackful context switch for the simulator's fibers: jump() saves the callee-saved
// registers on the current stack and resumes another context. On x86-64 a 12-instruction switch
// (fiber_switch.cpp); it leaves out Boost.Context's x87/MXCSR control-word save, which costs more
// than the rest of a switch and which kernels never change. Elsewhere: Boost.Context's fcontext.
// ASan is told about switches by the caller (execution.cpp), not here.
#pragma once
#include <cstddef>

namespace rtune::cuda::sim::fiber {

using Context = void*;
struct Transfer {
  Context from;  // the context that jumped here (resume it to go back)
  void* data;
};

// A context that, when first jumped to, calls fn(Transfer) on the stack ending at stack_top.
// fn must never return (it jumps away for the last time instead).
Context make(void* stack_top, size_t size, void (*fn)(Transfer));
// Suspends the calling context and resumes `to`; returns when someone jumps back.
Transfer jump(Context to, void* data);

}  // namespace rtune::cuda::sim::fiber
