// Caching device allocator (see allocator.h) and the engine's host<->device copies.
#include "kernels/cuda/allocator.h"

#include <map>
#include <mutex>
#include <unordered_map>

#include "kernels/cuda/runtime.h"

namespace rtune::cuda {

namespace {

constexpr size_t kSmall = size_t(1) << 20, kSmallStep = 512, kLargeStep = size_t(2) << 20;

std::string human(size_t b) {
  if (b >= (size_t(1) << 30)) return fmt::format("{:.2f} GiB", double(b) / double(size_t(1) << 30));
  if (b >= (size_t(1) << 20)) return fmt::format("{:.1f} MiB", double(b) / double(size_t(1) << 20));
  return fmt::format("{} bytes", b);
}

class CachingAllocator final : public DeviceAllocator {
 public:
  void* allocate(size_t nbytes, int device) override {
    RTUNE_CHECK(device == 0, "cuda:{}: the CUDA backend drives one device (cuda:0)", device);
    // A CUDA build on a machine without a usable GPU: one clear line, not the driver's error code.
    RTUNE_CHECK(rt::device_present(), "cuda:{}: no CUDA GPU found (this rtune has a CUDA backend, but no device "
                "or driver answers); use --device cpu", device);
    const size_t size = round_size(nbytes);
    std::lock_guard lk(mu_);
    // Exact size class only: lending a bigger block to a smaller request would leave the next
    // step's request of that bigger class without a block, so the loop would keep allocating.
    auto it = free_.find(size);
    if (it != free_.end()) {
      void* p = it->second;
      size_t got = it->first;
      free_.erase(it);
      stats_.cached_bytes -= got;
      ++stats_.cache_hits;
      take(p, got);
      return p;
    }
    void* p = nullptr;
    try {
      p = rt::device_malloc(size);
    } catch (const rt::CudaOutOfMemory&) {
      release_cache();
      try {
        p = rt::device_malloc(size);
      } catch (const rt::CudaOutOfMemory& e) {
        rt::MemInfo m{};
        try { m = rt::mem_get_info(); } catch (...) {}
        throw OutOfMemory(size, fmt::format(
            "CUDA out of memory: allocating {} on cuda:0 failed ({} held by tensors, device total {}, {})",
            human(size), human(stats_.in_use_bytes), human(m.total), e.what()));
      }
    }
    ++stats_.device_mallocs;
    take(p, size);
    return p;
  }

  void deallocate(void* p, int) override {
    if (!p) return;
    std::lock_guard lk(mu_);
    auto it = live_.find(p);
    RTUNE_CHECK(it != live_.end(), "CUDA allocator: free of {} which it did not allocate", p);
    size_t size = it->second;
    live_.erase(it);
    stats_.in_use_bytes -= size;
    stats_.cached_bytes += size;
    free_.emplace(size, p);
  }

  void copy(void* dst, Device dd, const void* src, Device sd, size_t n) override {
    if (n == 0) return;
    if (dd.is_cuda() && sd.is_cuda()) rt::memcpy_d2d(dst, src, n);
    else if (dd.is_cuda()) rt::memcpy_h2d(dst, src, n);
    else if (sd.is_cuda()) rt::memcpy_d2h(dst, src, n);
    else fail("CUDA allocator: host-to-host copy requested");
  }

  void fill_zero(void* p, size_t n, int) override { rt::memset_device(p, 0, n); }

  void empty() {
    std::lock_guard lk(mu_);
    release_cache();
  }
  AllocatorStats stats() {
    std::lock_guard lk(mu_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard lk(mu_);
    stats_.peak_in_use_bytes = stats_.in_use_bytes;
  }

 private:
  void take(void* p, size_t size) {
    live_.emplace(p, size);
    stats_.in_use_bytes += size;
    stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
  }
  void release_cache() {  // mu_ held
    for (auto& [size, p] : free_) {
      rt::device_free(p);
      ++stats_.device_frees;
      stats_.cached_bytes -= size;
    }
    free_.clear();
  }

  std::mutex mu_;
  std::multimap<size_t, void*> free_;
  std::unordered_map<void*, size_t> live_;
  AllocatorStats stats_;
};

CachingAllocator& the_allocator() {
  static auto* a = new CachingAllocator();  // never destroyed: tensors may outlive static destructors
  return *a;
}

}  // namespace

size_t round_size(size_t bytes) {
  if (bytes == 0) bytes = 1;
  size_t step = bytes < kSmall ? kSmallStep : kLargeStep;
  return (bytes + step - 1) / step * step;
}

void init() {
  static bool done = [] {
    register_cuda_allocator(&the_allocator());
    return true;
  }();
  (void)done;
}

AllocatorStats allocator_stats() { return the_allocator().stats(); }
void reset_peak_memory() { the_allocator().reset_peak(); }
void empty_cache() { the_allocator().empty(); }

}  // namespace rtune::cuda
