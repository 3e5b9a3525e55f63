// Where a loader's batch bytes live: the ordinary heap, or host memory a device backend supplies.
// Page-locked (pinned) memory from the CUDA backend lets the host->device copy of a batch run as a
// direct DMA at full bus speed, as PyTorch's DataLoader(pin_memory=True). The loader depends on no
// device code: the caller hands it the two functions (finetune/batch.h: pinned_host_memory()).
#pragma once
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <vector>

namespace rtune::io {

struct HostMemory {
  void* (*allocate)(size_t bytes);  // throws on failure
  void (*deallocate)(void* p);
};

// A std::allocator that takes its memory from a HostMemory (nullptr: operator new). It travels with
// the container on move and swap, so a buffer is always freed by the memory it came from.
template <class T>
struct HostAllocator {
  using value_type = T;
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_copy_assignment = std::true_type;
  using propagate_on_container_swap = std::true_type;

  const HostMemory* memory = nullptr;

  HostAllocator() = default;
  explicit HostAllocator(const HostMemory* m) : memory(m) {}
  template <class U> HostAllocator(const HostAllocator<U>& o) : memory(o.memory) {}

  T* allocate(size_t n) {
    return static_cast<T*>(memory ? memory->allocate(n * sizeof(T)) : ::operator new(n * sizeof(T)));
  }
  void deallocate(T* p, size_t) {
    if (memory) memory->deallocate(p);
    else ::operator delete(p);
  }
  template <class U> bool operator==(const HostAllocator<U>& o) const { return memory == o.memory; }
};

using ImageBytes = std::vector<uint8_t, HostAllocator<uint8_t>>;

}  // namespace rtune::io
