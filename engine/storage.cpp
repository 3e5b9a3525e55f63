#include "engine/storage.h"
#include <cstdint>
#include <cstdlib>
#include <new>
#include "engine/error.h"

namespace rtune {

namespace {
DeviceAllocator* g_cuda_allocator = nullptr;
constexpr size_t kAlign = 64;  // cache line; also what vectorised kernels like
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
    void* p = std::aligned_alloc(kAlign, rounded);
    if (!p) throw OutOfMemory(fmt::format("out of host memory allocating {} bytes", nbytes));
    s.impl_->data = p;
    s.impl_->owner = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
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
