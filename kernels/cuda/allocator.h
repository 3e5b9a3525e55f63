// The CUDA backend's caching device allocator (rtune::DeviceAllocator): freed blocks go to a cache
// keyed by size class and are handed out again, so a training loop whose tensor sizes repeat makes
// no cudaMalloc/cudaFree after its first step (PyTorch's CUDACachingAllocator idea, without block
// splitting; a request takes a cached block of exactly its size class). All work runs on one stream, so a block freed by the host is safe to reuse at once.
// Out of device memory: the cache is released and the allocation retried once; a second failure
// is rtune::DeviceOutOfMemory naming the request and the device's memory.
#pragma once
#include <cstddef>
#include <cstdint>

#include "engine/error.h"
#include "engine/storage.h"

namespace rtune::cuda {

// Registers the caching allocator with the engine (rtune::register_cuda_allocator). Idempotent;
// the façade calls it at start-up when the CUDA backend is linked.
void init();

using OutOfMemory = rtune::DeviceOutOfMemory;

struct AllocatorStats {
  uint64_t device_mallocs = 0;  // blocks obtained from the runtime (cudaMalloc)
  uint64_t device_frees = 0;    // blocks returned to the runtime (cudaFree)
  uint64_t cache_hits = 0;      // allocations served from the cache
  size_t in_use_bytes = 0;      // bytes of blocks held by tensors
  size_t cached_bytes = 0;      // bytes of free blocks in the cache
  size_t peak_in_use_bytes = 0;
};
AllocatorStats allocator_stats();
void reset_peak_memory();
// Returns every cached free block to the runtime.
void empty_cache();

// The one GPU this process drives: the device of its first CUDA allocation (a data-parallel rank's
// cuda:LOCAL_RANK), cuda:0 before any. Tensors on another cuda:N are refused.
Device process_device();

// Size class of a request: multiples of 512 bytes below 1 MiB, of 2 MiB above.
size_t round_size(size_t bytes);

}  // namespace rtune::cuda
