// Context switch for the simulator's fibers (see fiber_switch.h). The x86-64 System V version
// keeps rbx, rbp, r12-r15 on the suspended stack; a new context starts in rt_sim_fiber_start with
// the entry function in rbx and a 16-byte aligned stack.
#include "kernels/cuda/sim/fiber_switch.h"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__linux__)

extern "C" {
struct RtSimTransfer {
  void* from;
  void* data;
};
RtSimTransfer rt_sim_jump(void* to, void* data);
void rt_sim_fiber_start();
}

asm(R"(
  .text
  .globl rt_sim_jump
  .hidden rt_sim_jump
  .type rt_sim_jump, @function
rt_sim_jump:
  .cfi_startproc
  pushq %rbp
  pushq %rbx
  pushq %r15
  pushq %r14
  pushq %r13
  pushq %r12
  movq %rsp, %rax
  movq %rdi, %rsp
  popq %r12
  popq %r13
  popq %r14
  popq %r15
  popq %rbx
  popq %rbp
  movq %rsi, %rdx
  ret
  .cfi_endproc
  .size rt_sim_jump, .-rt_sim_jump

  .globl rt_sim_fiber_start
  .hidden rt_sim_fiber_start
  .type rt_sim_fiber_start, @function
rt_sim_fiber_start:
  .cfi_startproc
  .cfi_undefined rip
  movq %rax, %rdi
  movq %rdx, %rsi
  call *%rbx
  ud2
  .cfi_endproc
  .size rt_sim_fiber_start, .-rt_sim_fiber_start
)");

namespace rtune::cuda::sim::fiber {

Context make(void* stack_top, size_t, void (*fn)(Transfer)) {
  auto top = reinterpret_cast<uintptr_t>(stack_top) & ~uintptr_t(15);
  auto* ret_slot = reinterpret_cast<void**>(top - 24);  // after `ret`, rsp = top - 16: aligned for the call
  *ret_slot = reinterpret_cast<void*>(&rt_sim_fiber_start);
  auto* regs = reinterpret_cast<void**>(ret_slot) - 6;  // r12 r13 r14 r15 rbx rbp, as rt_sim_jump pops them
  std::memset(regs, 0, 6 * sizeof(void*));
  regs[4] = reinterpret_cast<void*>(fn);  // rbx
  return regs;
}

Transfer jump(Context to, void* data) {
  RtSimTransfer t = rt_sim_jump(to, data);
  return {t.from, t.data};
}

}  // namespace rtune::cuda::sim::fiber

#else  // other platforms: Boost.Context

#include <boost/context/detail/fcontext.hpp>

namespace rtune::cuda::sim::fiber {
namespace bc = boost::context::detail;
namespace {
thread_local void (*tl_entry)(Transfer) = nullptr;
void start(bc::transfer_t t) { tl_entry({t.fctx, t.data}); }
}  // namespace

Context make(void* stack_top, size_t size, void (*fn)(Transfer)) {
  tl_entry = fn;  // one entry function per process in practice (the executor's)
  return bc::make_fcontext(stack_top, size, start);
}
Transfer jump(Context to, void* data) {
  bc::transfer_t t = bc::jump_fcontext(to, data);
  return {t.fctx, t.data};
}

}  // namespace rtune::cuda::sim::fiber
#endif
