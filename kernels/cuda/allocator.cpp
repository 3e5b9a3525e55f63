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
    const size_t size = round_size(nbytes);
    std::lock_guard lk(mu_);
    bind(device);
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
            "CUDA out of memory: allocating {} on cuda:{} failed ({} held by tensors, device total {}, {})",
            human(size), device_, human(stats_.in_use_bytes), human(m.total), e.what()));
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
  // The first allocation picks the process's GPU (cudaSetDevice on this, the backend's, thread); every
  // later one must be on it: one process drives one GPU (a data-parallel run is one process per GPU).
  void bind(int device) {  // mu_ held
    if (device_ >= 0) {
      RTUNE_CHECK(device == device_, "cuda:{}: this process already drives cuda:{}; rtune uses one GPU per process "
                  "(for several GPUs, start one rank per GPU: mpirun -np N rtune train ...)", device, device_);
      return;
    }
    // A CUDA build on a machine without a usable GPU: one clear line, not the driver's error code.
    const int count = rt::device_count();
    RTUNE_CHECK(count > 0, "cuda:{}: no CUDA GPU found (this rtune has a CUDA backend, but no device "
                "or driver answers); use --device cpu", device);
    RTUNE_CHECK(device >= 0 && device < count, "cuda:{}: this machine has {} CUDA device{} (cuda:0{})", device, count,
                count == 1 ? "" : "s", count == 1 ? "" : fmt::format(" to cuda:{}", count - 1));
    rt::set_device(device);
    device_ = device;
  }

 public:
  int bound_device() {
    std::lock_guard lk(mu_);
    return std::max(device_, 0);
  }

 private:
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
  int device_ = -1;  // the process's GPU, once chosen
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

Device process_device() { return Device::cuda(the_allocator().bound_device()); }

AllocatorStats allocator_stats() { return the_allocator().stats(); }
void reset_peak_memory() { the_allocator().reset_peak(); }
void empty_cache() { the_allocator().empty(); }

}  // namespace rtune::cuda
