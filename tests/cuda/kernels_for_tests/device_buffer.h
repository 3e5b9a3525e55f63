// Test helper: a typed device buffer through the runtime layer (upload/download by value).
#pragma once
#include <vector>

#include "kernels/cuda/runtime.h"

namespace rtune::cuda::testk {

template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n), p_(static_cast<T*>(rt::device_malloc(n * sizeof(T)))) {}
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() { rt::device_free(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return p_; }
  size_t size() const { return n_; }
  void upload(const std::vector<T>& host) { rt::memcpy_h2d(p_, host.data(), host.size() * sizeof(T)); }
  void fill_bytes(int v) { rt::memset_device(p_, v, n_ * sizeof(T)); }
  std::vector<T> download() const {
    std::vector<T> h(n_);
    rt::memcpy_d2h(h.data(), p_, n_ * sizeof(T));
    return h;
  }

 private:
  size_t n_;
  T* p_;
};

}  // namespace rtune::cuda::testk
