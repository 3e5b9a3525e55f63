// Simulated-device extras of the runtime layer (only in RTUNE_CUDA_SIM builds): range checks and
// an access guard for the cuDNN/cuBLAS stand-ins, memory counters and the memory limit for tests.
// Device memory lives in one mmap'd arena that is PROT_NONE except for the allocations a kernel
// launch, a runtime copy/memset or a SimDeviceAccess guard uses, while it runs; a host dereference
// outside those aborts with a message naming the allocation.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace rtune::cuda::rt {

// Throws CudaError (op = who) unless [p, p+bytes) lies inside one live device allocation.
// bytes == 0 only requires p to be null or inside (or one past) a live allocation.
void sim_check_device_range(const void* p, size_t bytes, const char* who);
// True when p points into the simulated device's address range (live, freed or never allocated).
bool sim_is_device_address(const void* p);
// The simulated device that was current (rt::set_device) when the live allocation holding p was
// made; -1 when p is not inside a live allocation. All devices share one arena, so only this tag
// tells their memory apart.
int sim_allocation_device(const void* p);

// While alive, host code (a stand-in library) may read and write device memory. Nests; thread-safe.
// The default form covers the whole device: an allocation becomes accessible when first touched
// (the SIGSEGV handler opens it and the access is retried), so the cost is that of the
// allocations actually used; touching device memory outside every live allocation still aborts.
// The ranged form opens the live allocations the pointers point into up front and throws
// CudaError (op = who) for a pointer into the device range that is not inside a live allocation
// (null and host pointers are ignored).
class SimDeviceAccess {
 public:
  SimDeviceAccess();
  SimDeviceAccess(std::initializer_list<const void*> ptrs, const char* who);
  ~SimDeviceAccess();
  SimDeviceAccess(const SimDeviceAccess&) = delete;
  SimDeviceAccess& operator=(const SimDeviceAccess&) = delete;

 private:
  bool all_;
  std::vector<size_t> opened_;
};

// For a pointer-validator hook that has no "done" call (the cuDNN/cuBLAS stand-ins' one): checks
// [p, p+bytes) like sim_check_device_range and makes that allocation accessible until the next
// runtime call or kernel launch.
void sim_access_until_next_call(const void* p, size_t bytes, const char* who);

struct SimMemoryStats {
  uint64_t allocations = 0;    // device_malloc calls that succeeded, since start
  uint64_t frees = 0;          // device_free calls of live allocations
  size_t live_allocations = 0;
  size_t live_bytes = 0;       // sum of requested sizes of live allocations
  size_t peak_bytes = 0;       // max of live_bytes since start or sim_reset_peak()
  size_t limit_bytes = 0;      // device_malloc beyond this throws CudaOutOfMemory
};
SimMemoryStats sim_memory_stats();
void sim_reset_peak();
// Device memory size (default 16 GiB, or env RTUNE_SIM_MEMORY_MB). Throws if below live bytes or
// above the reserved address range (64 GiB).
void sim_set_memory_limit(size_t bytes);

}  // namespace rtune::cuda::rt
