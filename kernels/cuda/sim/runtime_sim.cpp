// The runtime layer (runtime.h) for the simulated device: RTUNE_SIM_DEVICES identical devices (default
// 1; "rtune simulated device", sm_90, bf16, memory = the configured limit; none when CUDA_VISIBLE_DEVICES
// is set and empty, as on the real runtime), a current device per host thread, host-memory copies that check every pointer against
// the allocation table (a wrong direction, a range past an end, a freed pointer: rt::CudaError),
// and streams/events that complete at once (work runs synchronously on the calling thread), but
// keep CUDA's rules: a destroyed handle, or the elapsed time of an unrecorded or non-timing event,
// is an error (docs/cuda-libs-semantics.md section 10).
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <unordered_set>

#include "kernels/cuda/runtime.h"
#include "kernels/cuda/sim/internal.h"

struct CUstream_st {
  uint64_t id = 0;
  bool alive = true;
};
struct CUevent_st {
  bool alive = true, timing = true, recorded = false;
  std::chrono::steady_clock::time_point when{};
};

namespace rtune::cuda::rt {

CudaError::CudaError(std::string op, int code, const std::string& message)
    : rtune::Error(message), op_(std::move(op)), code_(code) {}
CudaOutOfMemory::CudaOutOfMemory(std::string op, size_t requested, const std::string& message)
    : CudaError(std::move(op), 2, message), requested_(requested) {}

namespace {

constexpr int kMaxSimDevices = 16;
constexpr int kInvalidValue = 1, kInvalidDevice = 101, kInvalidHandle = 400, kDirection = 21;

// Handles are never freed (a destroyed one stays recognisable), so they live in deques.
struct Handles {
  std::mutex mu;
  std::deque<CUstream_st> streams;
  std::deque<CUevent_st> events;
  std::unordered_set<const void*> stream_set, event_set;
  std::unordered_set<void*> pinned;
};
// The current device belongs to the calling host thread, as in cudart (cudaSetDevice).
thread_local int tl_device = 0;
Handles& H() {
  static Handles* h = new Handles();
  return *h;
}

CUevent_st* live_event(Event e, const char* who) {
  auto& h = H();
  std::lock_guard lk(h.mu);
  if (!e.raw() || !h.event_set.count(e.raw()))
    throw CudaError(who, kInvalidHandle, fmt::format("{}: {} is not an event from rt::event_create", who, (void*)e.raw()));
  if (!e.raw()->alive) throw CudaError(who, kInvalidHandle, fmt::format("{}: event used after event_destroy", who));
  return e.raw();
}

// Makes one allocation accessible for a copy or memset.
struct Opened {
  size_t key;
  Opened(const void* p, const char* who) : key(sim::open_allocation(p, who)) {}
  ~Opened() { sim::close_allocation(key); }
  Opened(const Opened&) = delete;
  Opened& operator=(const Opened&) = delete;
};

// A host pointer must not reach into the device range (the direction check of cudaMemcpy kinds).
void check_host_range(const void* p, size_t n, const char* who, const char* role) {
  if (n == 0) return;
  if (!p) throw CudaError(who, kInvalidValue, fmt::format("{}: null {} pointer", who, role));
  if (sim::overlaps_device_range(p, n))
    throw CudaError(who, kDirection,
                    fmt::format("{}: the {} {} is device memory, but this copy kind expects host memory "
                                "(wrong copy direction)", who, role, sim::describe_address(p)));
}
void check_device(const void* p, size_t n, const char* who, const char* role) {
  if (n && p && !sim::overlaps_device_range(p, n))
    throw CudaError(who, kDirection, fmt::format("{}: the {} {} is host memory, but this copy kind expects device "
                                                 "memory (wrong copy direction)", who, role, p));
  sim_check_device_range(p, n, who);
}

}  // namespace

// ---- devices
// RTUNE_SIM_DEVICES devices (default 1), or none when CUDA_VISIBLE_DEVICES is set and empty: the real
// runtime then hides every GPU (cudaErrorNoDevice), so a test can run what a machine without a GPU runs.
// Read on every call, so a test may set it before use. The devices share one memory arena: an
// allocation made on device 0 is readable by a kernel "on" device 1 (a real GPU would fault or need
// peer access). Each allocation records its device (rt::sim_allocation_device), which the NCCL
// stand-in checks against the communicator's; kernels are not checked.
int device_count() {
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  if (visible && *visible == '\0') return 0;
  const char* env = std::getenv("RTUNE_SIM_DEVICES");
  if (!env) return 1;
  char* end = nullptr;
  errno = 0;
  const long n = std::strtol(env, &end, 10);
  if (end == env || *end != '\0' || errno || n < 1 || n > kMaxSimDevices)
    throw rtune::Error(fmt::format("RTUNE_SIM_DEVICES='{}': expected the number of simulated GPUs, an integer "
                                   "from 1 to {}", env, kMaxSimDevices));
  return int(n);
}

namespace {
void check_ordinal(int device, const char* who) {
  const int n = device_count();
  if (device < 0 || device >= n)
    throw CudaError(who, kInvalidDevice, fmt::format("{}({}): invalid device ordinal ({} simulated device{})", who,
                                                     device, n, n == 1 ? "" : "s"));
}
}  // namespace

DeviceProps device_props(int device) {
  check_ordinal(device, "cudaGetDeviceProperties");
  DeviceProps p;
  p.name = "rtune simulated device";
  p.total_memory = sim::memory_limit();
  p.sm_count = 132;
  p.cc_major = 9;
  p.cc_minor = 0;
  p.bf16 = true;
  p.max_threads_per_block = 1024;
  p.shared_memory_per_block = 48 * 1024;
  p.warp_size = 32;
  return p;
}

void set_device(int device) {
  check_ordinal(device, "cudaSetDevice");
  tl_device = device;
}
int get_device() { return tl_device; }
void device_synchronize() { sim::close_lingering(); }

MemInfo mem_get_info() {
  SimMemoryStats s = sim_memory_stats();
  return {s.limit_bytes - s.live_bytes, s.limit_bytes};
}

// ---- pinned host memory (plain host memory, tracked so a wrong free is reported)
void* pinned_malloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
  if (!p) throw CudaOutOfMemory(fmt::format("cudaMallocHost({} bytes)", bytes), bytes,
                                fmt::format("cudaMallocHost({} bytes): out of memory", bytes));
  std::lock_guard lk(H().mu);
  H().pinned.insert(p);
  return p;
}
void pinned_free(void* p) {
  if (!p) return;
  {
    std::lock_guard lk(H().mu);
    if (!H().pinned.erase(p))
      throw CudaError("cudaFreeHost", kInvalidValue,
                      fmt::format("cudaFreeHost({}): not a live allocation from rt::pinned_malloc", p));
  }
  std::free(p);
}

// ---- copies
void memcpy_h2d(void* dst, const void* src, size_t n) {
  const char* who = "cudaMemcpy(HostToDevice)";
  sim::close_lingering();
  check_device(dst, n, who, "destination");
  check_host_range(src, n, who, "source");
  if (n == 0) return;
  Opened a(dst, who);
  std::memcpy(dst, src, n);
}
void memcpy_d2h(void* dst, const void* src, size_t n) {
  const char* who = "cudaMemcpy(DeviceToHost)";
  sim::close_lingering();
  check_device(src, n, who, "source");
  check_host_range(dst, n, who, "destination");
  if (n == 0) return;
  Opened a(src, who);
  std::memcpy(dst, src, n);
}
void memcpy_d2d(void* dst, const void* src, size_t n) {
  const char* who = "cudaMemcpy(DeviceToDevice)";
  sim::close_lingering();
  check_device(src, n, who, "source");
  check_device(dst, n, who, "destination");
  auto d = static_cast<const char*>(dst), s = static_cast<const char*>(src);
  if (n && d < s + n && s < d + n)
    throw CudaError(who, kInvalidValue, fmt::format("{}: source and destination overlap ({} bytes)", who, n));
  if (n == 0) return;
  Opened a(src, who), b(dst, who);
  std::memcpy(dst, src, n);
}
void memcpy_h2d_async(void* dst, const void* src, size_t n, Stream s) {
  sim::check_stream(s, "cudaMemcpyAsync(HostToDevice)");
  memcpy_h2d(dst, src, n);
}
void memcpy_d2h_async(void* dst, const void* src, size_t n, Stream s) {
  sim::check_stream(s, "cudaMemcpyAsync(DeviceToHost)");
  memcpy_d2h(dst, src, n);
}
void memcpy_d2d_async(void* dst, const void* src, size_t n, Stream s) {
  sim::check_stream(s, "cudaMemcpyAsync(DeviceToDevice)");
  memcpy_d2d(dst, src, n);
}
void memset_device(void* dst, int value, size_t n) {
  sim::close_lingering();
  sim_check_device_range(dst, n, "cudaMemset");
  if (n == 0) return;
  Opened a(dst, "cudaMemset");
  std::memset(dst, static_cast<unsigned char>(value), n);
}
void memset_device_async(void* dst, int value, size_t n, Stream s) {
  sim::check_stream(s, "cudaMemsetAsync");
  memset_device(dst, value, n);
}

// ---- streams
Stream default_stream() { return Stream(); }
Stream stream_create(bool /*non_blocking: the simulator runs all stream work at once, in issue order*/) {
  auto& h = H();
  std::lock_guard lk(h.mu);
  CUstream_st& s = h.streams.emplace_back();
  s.id = h.streams.size();
  h.stream_set.insert(&s);
  return Stream(&s);
}
void stream_destroy(Stream s) {
  const char* who = "cudaStreamDestroy";
  sim::check_stream(s, who);
  if (s.is_default()) throw CudaError(who, kInvalidHandle, "cudaStreamDestroy: the default stream cannot be destroyed");
  std::lock_guard lk(H().mu);
  s.raw()->alive = false;
}
void stream_synchronize(Stream s) {
  sim::close_lingering();
  sim::check_stream(s, "cudaStreamSynchronize");
}
void stream_wait_event(Stream s, Event e) {
  sim::check_stream(s, "cudaStreamWaitEvent");
  live_event(e, "cudaStreamWaitEvent");
}

// ---- events
Event event_create(bool timing) {
  auto& h = H();
  std::lock_guard lk(h.mu);
  CUevent_st& e = h.events.emplace_back();
  e.timing = timing;
  h.event_set.insert(&e);
  return Event(&e);
}
void event_destroy(Event e) {
  CUevent_st* ev = live_event(e, "cudaEventDestroy");
  std::lock_guard lk(H().mu);
  ev->alive = false;
}
void event_record(Event e, Stream s) {
  CUevent_st* ev = live_event(e, "cudaEventRecord");
  sim::check_stream(s, "cudaEventRecord");
  std::lock_guard lk(H().mu);
  ev->recorded = true;
  ev->when = std::chrono::steady_clock::now();  // all earlier work on s is already done
}
void event_synchronize(Event e) {
  sim::close_lingering();
  live_event(e, "cudaEventSynchronize");
}
bool event_query(Event e) {  // the simulator runs stream work at once: a recorded event is complete
  sim::close_lingering();
  live_event(e, "cudaEventQuery");
  return true;
}
float event_elapsed_ms(Event start, Event end) {
  const char* who = "cudaEventElapsedTime";
  CUevent_st* a = live_event(start, who);
  CUevent_st* b = live_event(end, who);
  for (CUevent_st* ev : {a, b}) {
    if (!ev->timing)
      throw CudaError(who, kInvalidHandle, "cudaEventElapsedTime: event created with timing disabled "
                                           "(cudaErrorInvalidResourceHandle)");
    if (!ev->recorded)
      throw CudaError(who, kInvalidHandle, "cudaEventElapsedTime: event never recorded "
                                           "(cudaErrorInvalidResourceHandle)");
  }
  return std::chrono::duration<float, std::milli>(b->when - a->when).count();
}

void check_last_launch(const char*) {}  // the simulator throws at the launch itself

}  // namespace rtune::cuda::rt

namespace rtune::cuda::sim {
void check_stream(rt::Stream s, const char* who) {
  if (s.is_default()) return;
  auto& h = rt::H();
  std::lock_guard lk(h.mu);
  if (!h.stream_set.count(s.raw()))
    throw rt::CudaError(who, rt::kInvalidHandle,
                        fmt::format("{}: {} is not a stream from rt::stream_create", who, (void*)s.raw()));
  if (!s.raw()->alive)
    throw rt::CudaError(who, rt::kInvalidHandle, fmt::format("{}: stream used after stream_destroy", who));
}
}  // namespace rtune::cuda::sim
