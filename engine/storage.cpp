#include "engine/storage.h"
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>
#include "engine/error.h"

namespace rtune {

namespace {
DeviceAllocator* g_cuda_allocator = nullptr;
constexpr size_t kAlign = 64;  // cache line; also what vectorised kernels like

// Large host blocks are kept for reuse instead of freed. glibc serves blocks above its mmap threshold
// (at most 32 MiB) with mmap and unmaps them on free, so every training step would fault each large
// activation's pages in again, zeroed by the kernel: ~10% of a ResNet-18 step at batch 32 on 2 cores
// (perf: exc_page_fault, clear_page). A step allocates the same sizes every time, so a free list per exact
// size makes steps after the first fault nothing. Idle blocks are bounded (kMaxIdle) and all released
// before an allocation is reported as out of memory. Not under AddressSanitizer, whose free() must see
// every block to find use-after-free.
#if defined(__SANITIZE_ADDRESS__)
#define RTUNE_STORAGE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RTUNE_STORAGE_ASAN 1
#endif
#endif
#if defined(RTUNE_STORAGE_ASAN)
constexpr bool kCacheHostBlocks = false;
#else
constexpr bool kCacheHostBlocks = true;
#endif
constexpr size_t kMinCached = size_t(1) << 20;  // smaller blocks come from malloc's own free lists
constexpr size_t kMaxIdle = size_t(4) << 30;

class HostBlockCache {
 public:
  void* take(size_t bytes) {
    std::lock_guard<std::mutex> lock(m_);
    auto it = free_.find(bytes);
    if (it == free_.end() || it->second.empty()) return nullptr;
    void* p = it->second.back();
    it->second.pop_back();
    idle_ -= bytes;
    return p;
  }
  void give(void* p, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(m_);
      if (idle_ + bytes <= kMaxIdle) {
        free_[bytes].push_back(p);
        idle_ += bytes;
        return;
      }
    }
    std::free(p);
  }
  void release_all() {
    std::lock_guard<std::mutex> lock(m_);
    for (auto& [bytes, blocks] : free_)
      for (void* p : blocks) std::free(p);
    free_.clear();
    idle_ = 0;
  }

 private:
  std::mutex m_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t idle_ = 0;
};

// Never destroyed: storages freed during static destruction still find it.
HostBlockCache& host_cache() {
  static auto* c = new HostBlockCache;
  return *c;
}

void* host_alloc(size_t rounded) {
  const bool cached = kCacheHostBlocks && rounded >= kMinCached;
  if (cached)
    if (void* p = host_cache().take(rounded)) return p;
  void* p = std::aligned_alloc(kAlign, rounded);
  if (!p && cached) {
    host_cache().release_all();
    p = std::aligned_alloc(kAlign, rounded);
  }
  return p;
}

void host_free(void* p, size_t rounded) {
  if (kCacheHostBlocks && rounded >= kMinCached) host_cache().give(p, rounded);
  else std::free(p);
}
}  // namespace

void register_cuda_allocator(DeviceAllocator* a) { g_cuda_allocator = a; }

DeviceAllocator* cuda_allocator() {
  RTUNE_CHECK(g_cuda_allocator, "this rtune was built without CUDA: no cuda device is available");
  return g_cuda_allocator;
}

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.rfind("cuda:", 0) == 0) {
    try {
      size_t used = 0;
      int i = std::stoi(s.substr(5), &used);
      if (i >= 0 && used == s.size() - 5) return cuda(i);
    } catch (...) {
    }
  }
  fail("unknown device '{}' (expected cpu, cuda or cuda:N)", s);
}

Storage Storage::allocate(size_t nbytes, Device device) {
  Storage s;
  s.impl_ = std::make_shared<Impl>();
  s.impl_->nbytes = nbytes;
  s.impl_->device = device;
  if (nbytes > SIZE_MAX / 2) throw OutOfMemory(fmt::format("out of host memory allocating {} bytes", nbytes));
  size_t rounded = (std::max<size_t>(nbytes, 1) + kAlign - 1) / kAlign * kAlign;
  if (device.is_cpu()) {
    void* p = host_alloc(rounded);
    if (!p) throw OutOfMemory(fmt::format("out of host memory allocating {} bytes", nbytes));
    s.impl_->data = p;
    s.impl_->owner = std::shared_ptr<void>(p, [rounded](void* q) { host_free(q, rounded); });
  } else {
    DeviceAllocator* a = cuda_allocator();
    void* p = a->allocate(rounded, device.index);
    int idx = device.index;
    s.impl_->data = p;
    s.impl_->owner = std::shared_ptr<void>(p, [a, idx](void* q) { a->deallocate(q, idx); });
  }
  return s;
}

Storage Storage::wrap(void* data, size_t nbytes, Device device, std::shared_ptr<void> keep_alive) {
  Storage s;
  s.impl_ = std::make_shared<Impl>();
  s.impl_->data = data;
  s.impl_->nbytes = nbytes;
  s.impl_->device = device;
  s.impl_->owner = std::move(keep_alive);
  return s;
}

}  // namespace rtune
