// Host<->device copies queued on the backend stream behind the compute (cudaMemcpyAsync), and fences
// the host can wait on: a CUDA event, plus an asynchronous copy of the device error record
// (handles.h) into pinned memory, so an error a kernel found (an out-of-range cross-entropy target)
// is raised when the host next waits, without a synchronising check inside the op. Fences are pooled:
// a training loop creates no event and allocates no pinned memory after its first steps.
#include <mutex>
#include <vector>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/handles.h"

namespace rtune::cuda {

namespace {
struct FenceState {
  CUevent_st* event = nullptr;
  DeviceErrorRecord* seen = nullptr;  // pinned: the device record as the fence found it
};
struct FencePool {
  std::mutex mu;
  std::vector<FenceState*> free;
};
FencePool& pool() {
  static FencePool* p = new FencePool();  // lives for the process, as the handles do
  return *p;
}
size_t dense_bytes(const Tensor& t) { return size_t(t.numel()) * dtype_size(t.dtype()); }
}  // namespace

std::shared_ptr<void> fence_record() {
  FenceState* f = nullptr;
  {
    std::lock_guard lk(pool().mu);
    if (!pool().free.empty()) {
      f = pool().free.back();
      pool().free.pop_back();
    }
  }
  if (!f) {
    f = new FenceState();
    f->event = rt::event_create(/*timing=*/false).raw();
    f->seen = static_cast<DeviceErrorRecord*>(rt::pinned_malloc(sizeof(DeviceErrorRecord)));
  }
  rt::memcpy_d2h_async(f->seen, device_error_record(), sizeof(DeviceErrorRecord), stream());
  rt::event_record(rt::Event(f->event), stream());
  return std::shared_ptr<void>(f, [](void* p) {
    std::lock_guard lk(pool().mu);
    pool().free.push_back(static_cast<FenceState*>(p));
  });
}

void fence_wait(void* state) {
  auto* f = static_cast<FenceState*>(state);
  rt::event_synchronize(rt::Event(f->event));
  if (f->seen->row < 0) return;
  const DeviceErrorRecord e = *f->seen;
  f->seen->row = -1;
  rt::memset_device_async(device_error_record(), 0xff, sizeof(DeviceErrorRecord), stream());  // report it once
  fail("cross_entropy: target {} at index {} out of range for {} classes", e.target, e.row, e.classes);
}

void upload(const Tensor& src, Tensor& dst) {
  rt::memcpy_h2d_async(dst.raw_data(), src.raw_data(), dense_bytes(src), stream());
}

void download(const Tensor& src, Tensor& dst) {
  rt::memcpy_d2h_async(dst.raw_data(), src.raw_data(), dense_bytes(src), stream());
}

}  // namespace rtune::cuda
