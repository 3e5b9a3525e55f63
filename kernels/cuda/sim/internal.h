// Internals of the simulated device shared by its parts (memory: device_memory.cpp, streams:
// runtime_sim.cpp, executor: execution.cpp). The public face is runtime.h and runtime_sim.h.
#pragma once
#include <cstddef>
#include <string>

#include "kernels/cuda/runtime.h"

namespace rtune::cuda::sim {

// True when [p, p+bytes) overlaps the device address range at all (live or not).
bool overlaps_device_range(const void* p, size_t bytes);
// "0x7f.. (offset 12 in live device allocation #3 of 400 bytes)" and the like, for messages.
std::string describe_address(const void* p);
// The PROT_NONE guard below each fiber stack (large, so a big local array cannot jump over it),
// and the one below the fiber running on this OS thread (nullptr outside a fiber), set by the
// executor so the SIGSEGV handler can name a simulated thread's stack overflow.
inline constexpr size_t kFiberGuardBytes = 64 * 1024;
extern thread_local const char* tl_fiber_guard_page __attribute__((tls_model("local-exec")));
// Makes sure this OS thread has an alternate signal stack, so a fiber stack overflow still reaches
// the SIGSEGV handler.
void ensure_signal_stack();

// Access control of device memory (device_memory.cpp). open_allocation opens the live allocation
// containing p (or ending at p) and returns a key for close_allocation; SIZE_MAX (a no-op key)
// for null or host pointers; a device address outside every live allocation throws CudaError.
size_t open_allocation(const void* p, const char* who);
// The same without the error: SIZE_MAX unless p is inside (or at the end of) a live allocation.
size_t open_allocation_if_live(const void* p);
void close_allocation(size_t key);
// Closes what rt::sim_access_until_next_call opened; every runtime call and launch starts with it.
void close_lingering();
// Puts the device-memory SIGSEGV handler back in front (a test framework may have replaced it).
void refresh_fault_handler();

// The device memory size (rt::sim_set_memory_limit), for device_props and mem_get_info.
size_t memory_limit();
// Throws CudaError (op = who, cudaErrorInvalidResourceHandle) unless s is the default stream or a
// live stream from rt::stream_create.
void check_stream(rt::Stream s, const char* who);

}  // namespace rtune::cuda::sim
