// The runtime layer (runtime.h) on the real CUDA runtime: every cudart call is checked and a failure
// becomes rt::CudaError naming the call (cudaErrorMemoryAllocation: rt::CudaOutOfMemory). The
// "no GPU" probe follows docs/cuda-libs-semantics.md section 10: cudaDriverGetVersion first, then
// cudaGetDeviceCount with the count preset to 0, and no further call after a failure.
#include <cuda_runtime.h>

#include <type_traits>

#include "kernels/cuda/runtime.h"

static_assert(std::is_same_v<cudaStream_t, CUstream_st*>, "runtime.h's Stream must hold a cudaStream_t");
static_assert(std::is_same_v<cudaEvent_t, CUevent_st*>, "runtime.h's Event must hold a cudaEvent_t");

namespace rtune::cuda::rt {

CudaError::CudaError(std::string op, int code, const std::string& message)
    : rtune::Error(message), op_(std::move(op)), code_(code) {}
CudaOutOfMemory::CudaOutOfMemory(std::string op, size_t requested, const std::string& message)
    : CudaError(std::move(op), int(cudaErrorMemoryAllocation), message), requested_(requested) {}

namespace {

[[noreturn]] void raise(cudaError_t e, const std::string& op, size_t requested = 0) {
  std::string msg = fmt::format("{}: {} ({})", op, cudaGetErrorString(e), cudaGetErrorName(e));
  if (e == cudaErrorMemoryAllocation) throw CudaOutOfMemory(op, requested, msg);
  throw CudaError(op, int(e), msg);
}
inline void check(cudaError_t e, const char* op) {
  if (e != cudaSuccess) raise(e, op);
}

}  // namespace

// ---- devices
int device_count() {
  static int count = [] {
    int driver = 0;
    if (cudaDriverGetVersion(&driver) != cudaSuccess || driver == 0) return 0;
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // clear it; the caller skips CUDA work
      return 0;
    }
    return n;
  }();
  return count;
}

DeviceProps device_props(int device) {
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
  DeviceProps d;
  d.name = p.name;
  d.total_memory = p.totalGlobalMem;
  d.sm_count = p.multiProcessorCount;
  d.cc_major = p.major;
  d.cc_minor = p.minor;
  d.bf16 = p.major >= 8;
  d.max_threads_per_block = p.maxThreadsPerBlock;
  d.shared_memory_per_block = p.sharedMemPerBlock;
  d.warp_size = p.warpSize;
  return d;
}

void set_device(int device) { check(cudaSetDevice(device), "cudaSetDevice"); }
int get_device() {
  int d = 0;
  check(cudaGetDevice(&d), "cudaGetDevice");
  return d;
}
void device_synchronize() { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }
MemInfo mem_get_info() {
  MemInfo m;
  check(cudaMemGetInfo(&m.free, &m.total), "cudaMemGetInfo");
  return m;
}

// ---- memory
void* device_malloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();  // an allocation failure is not sticky; do not leave it for the next launch check
    raise(e, fmt::format("cudaMalloc({} bytes)", bytes), bytes);
  }
  return p;
}
void device_free(void* p) {
  if (p) check(cudaFree(p), "cudaFree");
}
void* pinned_malloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  cudaError_t e = cudaMallocHost(&p, bytes);
  if (e != cudaSuccess) {
    cudaGetLastError();
    raise(e, fmt::format("cudaMallocHost({} bytes)", bytes), bytes);
  }
  return p;
}
void pinned_free(void* p) {
  if (p) check(cudaFreeHost(p), "cudaFreeHost");
}

void memcpy_h2d(void* dst, const void* src, size_t n) {
  check(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice), "cudaMemcpy(HostToDevice)");
}
void memcpy_d2h(void* dst, const void* src, size_t n) {
  check(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost), "cudaMemcpy(DeviceToHost)");
}
void memcpy_d2d(void* dst, const void* src, size_t n) {
  check(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToDevice), "cudaMemcpy(DeviceToDevice)");
}
void memcpy_h2d_async(void* dst, const void* src, size_t n, Stream s) {
  check(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, s.raw()), "cudaMemcpyAsync(HostToDevice)");
}
void memcpy_d2h_async(void* dst, const void* src, size_t n, Stream s) {
  check(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, s.raw()), "cudaMemcpyAsync(DeviceToHost)");
}
void memcpy_d2d_async(void* dst, const void* src, size_t n, Stream s) {
  check(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, s.raw()), "cudaMemcpyAsync(DeviceToDevice)");
}
void memset_device(void* dst, int value, size_t n) { check(cudaMemset(dst, value, n), "cudaMemset"); }
void memset_device_async(void* dst, int value, size_t n, Stream s) {
  check(cudaMemsetAsync(dst, value, n, s.raw()), "cudaMemsetAsync");
}

// ---- streams and events
Stream default_stream() { return Stream(); }
Stream stream_create(bool non_blocking) {
  cudaStream_t s = nullptr;
  check(cudaStreamCreateWithFlags(&s, non_blocking ? cudaStreamNonBlocking : cudaStreamDefault),
        "cudaStreamCreateWithFlags");
  return Stream(s);
}
void stream_destroy(Stream s) { check(cudaStreamDestroy(s.raw()), "cudaStreamDestroy"); }
void stream_synchronize(Stream s) { check(cudaStreamSynchronize(s.raw()), "cudaStreamSynchronize"); }
void stream_wait_event(Stream s, Event e) { check(cudaStreamWaitEvent(s.raw(), e.raw(), 0), "cudaStreamWaitEvent"); }
Event event_create(bool timing) {
  cudaEvent_t e = nullptr;
  check(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming), "cudaEventCreateWithFlags");
  return Event(e);
}
void event_destroy(Event e) { check(cudaEventDestroy(e.raw()), "cudaEventDestroy"); }
void event_record(Event e, Stream s) { check(cudaEventRecord(e.raw(), s.raw()), "cudaEventRecord"); }
void event_synchronize(Event e) { check(cudaEventSynchronize(e.raw()), "cudaEventSynchronize"); }
bool event_query(Event e) {
  const cudaError_t r = cudaEventQuery(e.raw());
  if (r == cudaErrorNotReady) return false;
  check(r, "cudaEventQuery");
  return true;
}
float event_elapsed_ms(Event start, Event end) {
  float ms = 0.f;
  check(cudaEventElapsedTime(&ms, start.raw(), end.raw()), "cudaEventElapsedTime");
  return ms;
}

void check_last_launch(const char* what) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) raise(e, what);
}

}  // namespace rtune::cuda::rt
