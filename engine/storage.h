// Refcounted raw memory shared by a tensor and all of its views. Device memory comes from an
// allocator the CUDA backend registers, so the engine never includes a CUDA header.
#pragma once
#include <cstddef>
#include <memory>
#include "engine/device.h"

namespace rtune {

// Implemented by a device backend (kernels/cuda); the CPU allocator is built in.
struct DeviceAllocator {
  virtual ~DeviceAllocator() = default;
  virtual void* allocate(size_t nbytes, int device_index) = 0;
  virtual void deallocate(void* p, int device_index) = 0;
  // Copies nbytes between host and device memory (kind of each side given by the devices).
  virtual void copy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t nbytes) = 0;
  virtual void fill_zero(void* p, size_t nbytes, int device_index) = 0;
};
void register_cuda_allocator(DeviceAllocator* a);
DeviceAllocator* cuda_allocator();  // throws "built without CUDA" when none is registered

class Storage {
 public:
  Storage() = default;
  static Storage allocate(size_t nbytes, Device device);
  // Wraps memory owned elsewhere (e.g. an mmap'd file); `keep_alive` holds the owner.
  static Storage wrap(void* data, size_t nbytes, Device device, std::shared_ptr<void> keep_alive);

  void* data() const { return impl_ ? impl_->data : nullptr; }
  size_t nbytes() const { return impl_ ? impl_->nbytes : 0; }
  Device device() const { return impl_ ? impl_->device : Device::cpu(); }
  bool defined() const { return bool(impl_); }
  bool same_as(const Storage& o) const { return impl_ == o.impl_; }

 private:
  struct Impl {
    void* data = nullptr;
    size_t nbytes = 0;
    Device device;
    std::shared_ptr<void> owner;  // frees the memory when the last Storage goes
  };
  std::shared_ptr<Impl> impl_;
};

}  // namespace rtune
