// The CUDA runtime calls the backend needs (cudaMalloc, cudaMemcpyAsync, streams, events, ...),
// behind one thin layer: runtime_cuda.cpp calls cudart and checks every result; sim/runtime_sim.cpp
// implements the same calls on host memory for the simulated device and reports misuse that the
// GPU would silently accept (copy past the end, wrong direction, use after free, host deref).
// Semantics follow docs/cuda-libs-semantics.md section 10. No CUDA header is included here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/error.h"

// The CUDA runtime's opaque handle types (driver_types.h: typedef struct CUstream_st* cudaStream_t).
// The simulator defines them in sim builds, so Stream::raw() is a cudaStream_t in both builds.
struct CUstream_st;
struct CUevent_st;

namespace rtune::cuda::rt {

// A failed runtime call. op() names the call ("cudaMalloc(4096 bytes)"), code() is the cudaError_t
// value (1 invalid value, 2 out of memory, 21 invalid memcpy direction, 101 invalid device,
// 400 invalid resource handle, 600 not ready, 9 invalid configuration, 35 insufficient driver).
class CudaError : public rtune::Error {
 public:
  CudaError(std::string op, int code, const std::string& message);
  const std::string& op() const noexcept { return op_; }
  int code() const noexcept { return code_; }

 private:
  std::string op_;
  int code_;
};

// cudaErrorMemoryAllocation from a device or pinned allocation; callers turn it into advice
// (smaller batch, bf16, ...). requested() is the size that did not fit.
class CudaOutOfMemory : public CudaError {
 public:
  CudaOutOfMemory(std::string op, size_t requested, const std::string& message);
  size_t requested() const noexcept { return requested_; }

 private:
  size_t requested_;
};

// A stream handle (not owning). Default-constructed = the legacy default stream (raw() == nullptr).
class Stream {
 public:
  Stream() = default;
  explicit Stream(CUstream_st* s) : s_(s) {}
  CUstream_st* raw() const noexcept { return s_; }
  bool is_default() const noexcept { return s_ == nullptr; }
  friend bool operator==(Stream a, Stream b) { return a.s_ == b.s_; }

 private:
  CUstream_st* s_ = nullptr;
};

// An event handle (not owning).
class Event {
 public:
  Event() = default;
  explicit Event(CUevent_st* e) : e_(e) {}
  CUevent_st* raw() const noexcept { return e_; }

 private:
  CUevent_st* e_ = nullptr;
};

struct DeviceProps {
  std::string name;
  size_t total_memory = 0;           // bytes
  int sm_count = 0;
  int cc_major = 0, cc_minor = 0;    // compute capability, e.g. 9.0
  bool bf16 = false;                 // bf16 arithmetic (sm_80+)
  int max_threads_per_block = 0;
  size_t shared_memory_per_block = 0;  // bytes usable without opt-in (48 KiB)
  int warp_size = 0;
};

struct MemInfo {
  size_t free = 0, total = 0;  // bytes; free is approximate on a real device
};

// ---- devices
// Number of usable devices; 0 when there is no driver or no GPU (never throws). The real
// implementation probes cudaDriverGetVersion first and makes no further call after a failure.
int device_count();
inline bool device_present() { return device_count() > 0; }
DeviceProps device_props(int device);
void set_device(int device);
int get_device();
void device_synchronize();
MemInfo mem_get_info();

// ---- memory. Device memory is not cleared (the simulator fills it with 0xFF bytes: NaN floats).
void* device_malloc(size_t bytes);  // throws CudaOutOfMemory; bytes == 0 gives nullptr
void device_free(void* p);          // nullptr is a no-op; anything else must be a live allocation
void* pinned_malloc(size_t bytes);  // page-locked host memory (cudaMallocHost)
void pinned_free(void* p);

// Copies of `bytes` bytes; the areas must not overlap. The *_async forms are ordered on `s`
// and, for pageable host memory, may return before the copy is done: keep the host buffer
// alive until stream_synchronize(s).
void memcpy_h2d(void* dst, const void* src, size_t bytes);
void memcpy_d2h(void* dst, const void* src, size_t bytes);
void memcpy_d2d(void* dst, const void* src, size_t bytes);
void memcpy_h2d_async(void* dst, const void* src, size_t bytes, Stream s);
void memcpy_d2h_async(void* dst, const void* src, size_t bytes, Stream s);
void memcpy_d2d_async(void* dst, const void* src, size_t bytes, Stream s);
// Sets `bytes` bytes to (unsigned char)value.
void memset_device(void* dst, int value, size_t bytes);
void memset_device_async(void* dst, int value, size_t bytes, Stream s);

// ---- streams and events
Stream default_stream();
// non_blocking: the stream does not synchronise implicitly with the legacy default stream
// (cudaStreamNonBlocking). The backend runs on the legacy default stream, so a stream whose work must
// overlap the backend's (the NCCL collectives') needs it; order is then only what events impose.
Stream stream_create(bool non_blocking = false);
void stream_destroy(Stream s);
void stream_synchronize(Stream s);
void stream_wait_event(Stream s, Event e);
Event event_create(bool timing = true);
void event_destroy(Event e);
void event_record(Event e, Stream s);
void event_synchronize(Event e);
// True when all work the event captured has completed (cudaEventQuery; cudaErrorNotReady is false):
// lets a host wait poll, and give up, instead of blocking in event_synchronize.
bool event_query(Event e);
// Milliseconds between two recorded, completed events (cudaEventElapsedTime).
float event_elapsed_ms(Event start, Event end);

// Throws CudaError naming `what` if the last kernel launch failed (cudaGetLastError).
void check_last_launch(const char* what);

}  // namespace rtune::cuda::rt

#ifdef RTUNE_CUDA_SIM
#include "kernels/cuda/sim/runtime_sim.h"  // sim-only checks, access guard and counters
#endif
