// cuDNN / cuBLAS handles created once per process, on first use.
#include "kernels/cuda/handles.h"

#include <mutex>

#include "kernels/cuda/allocator.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/check.h"
#ifdef RTUNE_CUDA_SIM
#include "kernels/cuda/sim/call_log.h"
#endif

namespace rtune::cuda {

namespace {
constexpr size_t kCublasWorkspace = size_t(4) << 20;

Handles* create_handles() {
  auto* h = new Handles();  // lives for the process: destroying handles at exit races the runtime
  init();                   // the allocator backs the workspace below
#ifdef RTUNE_CUDA_SIM
  // The stand-ins hand every buffer they touch to this check: it must lie in a live allocation.
  rtune::sim::set_device_pointer_validator(
      [](const void* p, size_t n, const char* what) { rt::sim_check_device_range(p, n, what); });
#endif
  const Device device = process_device();
  rt::set_device(device.index);
  h->stream = rt::default_stream();
  CUDNN_CHECK(cudnnCreate(&h->cudnn), "CUDA backend start-up");
  CUDNN_CHECK(cudnnSetStream(h->cudnn, h->stream.raw()), "CUDA backend start-up");
  CUBLAS_CHECK(cublasCreate(&h->cublas), "CUDA backend start-up");
  CUBLAS_CHECK(cublasSetStream(h->cublas, h->stream.raw()), "CUDA backend start-up");
  // Our own workspace from the caching allocator, so cuBLAS allocates nothing in the loop.
  h->cublas_workspace = Storage::allocate(kCublasWorkspace, device);
  CUBLAS_CHECK(cublasSetWorkspace(h->cublas, h->cublas_workspace.data(), kCublasWorkspace), "CUDA backend start-up");
  h->error_record = Storage::allocate(sizeof(DeviceErrorRecord), device);
  rt::memset_device(h->error_record.data(), 0xff, sizeof(DeviceErrorRecord));
  // fp32 GEMMs in full FMA precision (no TF32): the f32 parity target is 1e-4.
  CUBLAS_CHECK(cublasSetMathMode(h->cublas, CUBLAS_DEFAULT_MATH), "CUDA backend start-up");
  return h;
}
}  // namespace

int device_count() { return rt::device_count(); }

bool supports_bf16(int device) {
  try {
    return rt::device_props(device).bf16;
  } catch (const std::exception&) {
    return false;
  }
}

void* pinned_alloc(size_t bytes) { return rt::pinned_malloc(bytes); }
void pinned_free(void* p) { rt::pinned_free(p); }

Handles& handles() {
  static Handles* h = create_handles();
  return *h;
}

}  // namespace rtune::cuda
