// Device memory of the simulated CUDA device: cudaMalloc/cudaFree on one mmap'd arena.
// Like cudaMalloc, allocations are 256-byte aligned and not cleared (filled with 0xFF: NaN floats).
// Unlike the GPU, misuse is reported: every allocation is tracked, freed blocks wait in a
// quarantine before reuse (so a stale pointer reads as "freed"), the arena is PROT_NONE while host
// code runs (a SIGSEGV handler names the allocation a host dereference hit), and under ASan the
// redzones after allocations and freed blocks are poisoned, so kernel overruns are caught too.
#include "kernels/cuda/sim/internal.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/runtime.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define RT_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define RT_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define RT_POISON(p, n) ((void)(p), (void)(n))
#define RT_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace rtune::cuda::sim {

thread_local const char* tl_fiber_guard_page = nullptr;

namespace {

constexpr size_t kReserve = size_t(64) << 30;        // address range of the device
constexpr size_t kAlign = 256;                       // cudaMalloc alignment
constexpr size_t kRedzone = 256;                     // gap after every allocation
constexpr size_t kQuarantineBytes = size_t(4) << 30;  // address space held by freed blocks
constexpr size_t kQuarantineCount = 4096;

size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }
size_t page_size() { static const size_t p = size_t(sysconf(_SC_PAGESIZE)); return p; }

struct Block {
  size_t off = 0, size = 0, span = 0;  // span = size rounded up + redzone
  uint64_t id = 0;
  int open = 0;  // accessible while > 0
  int device = 0;  // the allocating thread's current device (all devices share this arena)
};

size_t default_limit() {
  if (const char* e = std::getenv("RTUNE_SIM_MEMORY_MB")) {
    char* end = nullptr;
    unsigned long long mb = std::strtoull(e, &end, 10);
    if (end != e && *end == '\0' && mb > 0) return size_t(mb) << 20;
    std::fprintf(stderr, "rtune sim: ignoring RTUNE_SIM_MEMORY_MB='%s' (want a positive integer)\n", e);
  }
  return size_t(16) << 30;
}

void install_segv_handler();
void on_segv(int sig, siginfo_t* info, void* uctx);

class Arena {
 public:
  Arena() : limit_(default_limit()) {
    void* m = mmap(nullptr, kReserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) rtune::fail("simulated CUDA device: cannot reserve {} GiB of address space", kReserve >> 30);
    base_ = static_cast<char*>(m);
    free_[0] = kReserve;
    install_segv_handler();
  }

  char* base() const { return base_; }
  bool contains(const void* p) const {
    auto a = reinterpret_cast<uintptr_t>(p), b = reinterpret_cast<uintptr_t>(base_);
    return a >= b && a < b + kReserve;
  }

  void* allocate(size_t bytes) {
    std::lock_guard lk(mu_);
    install_segv_handler();  // in front again if someone installed theirs since
    if (bytes > limit_ - std::min(limit_, live_bytes_)) {
      throw rt::CudaOutOfMemory(
          fmt::format("cudaMalloc({} bytes)", bytes), bytes,
          fmt::format("cudaMalloc({} bytes): out of memory (cudaErrorMemoryAllocation): the simulated "
                      "device has {} of {} bytes in use by {} allocations",
                      bytes, live_bytes_, limit_, live_.size()));
    }
    Block b;
    b.size = bytes;
    b.span = round_up(bytes, kAlign) + kRedzone;
    b.id = ++allocations_;
    b.device = rt::get_device();
    if (!take_span(b)) {
      flush_quarantine();
      if (!take_span(b)) {
        --allocations_;
        throw rt::CudaOutOfMemory(fmt::format("cudaMalloc({} bytes)", bytes), bytes,
                                  fmt::format("cudaMalloc({} bytes): out of memory: the simulated device's "
                                              "address range is too fragmented", bytes));
      }
    }
    char* p = base_ + b.off;
    RT_UNPOISON(p, b.size);
    RT_POISON(p + b.size, b.span - b.size);
    Block& nb = live_[b.off] = b;
    open_block(nb);
    std::memset(p, 0xFF, b.size);  // not cleared, like cudaMalloc: NaN floats
    close_block(nb);
    live_bytes_ += bytes;
    peak_bytes_ = std::max(peak_bytes_, live_bytes_);
    return p;
  }

  void release(void* p) {
    std::lock_guard lk(mu_);
    const char* op = "cudaFree";
    if (!contains(p)) throw rt::CudaError(op, 1, fmt::format("cudaFree({}): not a device pointer (host memory)", p));
    size_t off = size_t(static_cast<char*>(p) - base_);
    auto it = live_.find(off);
    if (it == live_.end()) {
      if (freed_.count(off))
        throw rt::CudaError(op, 1, fmt::format("cudaFree({}): double free of device allocation #{} ({} bytes)", p,
                                               freed_[off].id, freed_[off].size));
      throw rt::CudaError(op, 1, fmt::format("cudaFree: {} is not the start of a live device allocation", describe_locked(p)));
    }
    while (it->second.open > 0) close_block(it->second);  // a guard still names it: it is gone now
    Block b = it->second;
    live_.erase(it);
    live_bytes_ -= b.size;
    ++frees_;
    RT_POISON(p, b.span);
    discard_pages(b.off, b.span);
    freed_[b.off] = b;
    quarantine_.push_back(b.off);
    quarantine_bytes_ += b.span;
    while (quarantine_bytes_ > kQuarantineBytes || quarantine_.size() > kQuarantineCount) evict_oldest();
  }

  void check_range(const void* p, size_t n, const char* who) {
    std::lock_guard lk(mu_);
    if (p == nullptr && n == 0) return;
    if (p == nullptr) throw rt::CudaError(who, 1, fmt::format("{}: null device pointer for {} bytes", who, n));
    if (!contains(p))
      throw rt::CudaError(who, 1, fmt::format("{}: {} is not a device pointer (host memory)", who, p));
    size_t off = size_t(static_cast<const char*>(p) - base_);
    if (const Block* b = find(live_, off, n == 0)) {
      if (off + n > b->off + b->size)
        throw rt::CudaError(who, 1, fmt::format("{}: {} bytes at {} run {} bytes past the end of device allocation "
                                                "#{} ({} bytes)", who, n, describe_locked(p),
                                                off + n - (b->off + b->size), b->id, b->size));
      return;
    }
    throw rt::CudaError(who, 1, fmt::format("{}: {}", who, describe_locked(p)));
  }

  std::string describe(const void* p) {
    std::lock_guard lk(mu_);
    return describe_locked(p);
  }
  int device_of(const void* p) {
    std::lock_guard lk(mu_);
    if (!contains(p)) return -1;
    const Block* b = find(live_, size_t(static_cast<const char*>(p) - base_), false);
    return b ? b->device : -1;
  }
  // For the signal handler: no allocation, no blocking.
  void describe_raw(const void* p, char* buf, size_t len) {
    if (!mu_.try_lock()) { std::snprintf(buf, len, "%p (allocation table busy)", p); return; }
    size_t off = size_t(static_cast<const char*>(p) - base_);
    if (const Block* b = find(live_, off, false))
      std::snprintf(buf, len, "%p (offset %zu in live device allocation #%llu of %zu bytes)", p, off - b->off,
                    (unsigned long long)b->id, b->size);
    else if (const Block* f = find(freed_, off, false))
      std::snprintf(buf, len, "%p (offset %zu in FREED device allocation #%llu of %zu bytes)", p, off - f->off,
                    (unsigned long long)f->id, f->size);
    else
      std::snprintf(buf, len, "%p (device address outside any allocation)", p);
    mu_.unlock();
  }

  // ---- access control. The arena is PROT_NONE except single live allocations while their open
  // count is positive (kernel pointer arguments, copies, ranged guards, and allocations opened on
  // first touch while a whole-device guard is alive). Pages two allocations share are
  // reference-counted.
  void begin_lazy() { ++lazy_guards_; }
  void end_lazy() {
    std::lock_guard lk(mu_);
    if (--lazy_guards_ > 0) return;
    for (size_t off : fault_opened_) {
      auto it = live_.find(off);
      if (it != live_.end() && it->second.open > 0) close_block(it->second);
    }
    fault_opened_.clear();
    install_segv_handler();  // one cheap sigaction call when still ours
  }
  // From the SIGSEGV handler: while a whole-device guard is alive, a fault inside a live allocation
  // opens it (until the last guard ends) and the access is retried.
  bool fault_open(const void* addr) {
    if (lazy_guards_.load() == 0) return false;
    std::lock_guard lk(mu_);
    if (lazy_guards_.load() == 0) return false;
    size_t off = size_t(static_cast<const char*>(addr) - base_);
    auto it = live_.upper_bound(off);
    if (it == live_.begin()) return false;
    Block& b = std::prev(it)->second;
    if (off >= b.off + b.size) return false;
    open_block(b);
    fault_opened_.push_back(b.off);
    return true;
  }
  // Opens the live allocation containing p (or ending at p) and returns its offset; SIZE_MAX when
  // p is null or host memory. A device address outside any live allocation throws (op = who).
  size_t open_ptr(const void* p, const char* who, bool strict = true) {
    std::lock_guard lk(mu_);
    if (!p || !contains(p)) return SIZE_MAX;
    size_t off = size_t(static_cast<const char*>(p) - base_);
    auto it = live_.upper_bound(off);
    if (it != live_.begin()) {
      Block& b = std::prev(it)->second;
      if (off <= b.off + b.size) {
        open_block(b);
        return b.off;
      }
    }
    if (!strict) return SIZE_MAX;
    throw rt::CudaError(who, 1, fmt::format("{}: {}", who, describe_locked(p)));
  }
  void close_off(size_t off) {
    if (off == SIZE_MAX) return;
    std::lock_guard lk(mu_);
    auto it = live_.find(off);
    if (it != live_.end() && it->second.open > 0) close_block(it->second);
  }
  // Allocations opened "until the next runtime call" (the stand-ins' validator hook).
  void linger(size_t off) {
    if (off == SIZE_MAX) return;
    std::lock_guard lk(mu_);
    lingering_.push_back(off);
    has_lingering_ = true;
  }
  void close_lingering() {
    if (!has_lingering_) return;
    std::lock_guard lk(mu_);
    has_lingering_ = false;
    for (size_t off : lingering_) {
      auto it = live_.find(off);
      if (it != live_.end() && it->second.open > 0) close_block(it->second);
    }
    lingering_.clear();
  }

  rt::SimMemoryStats stats() {
    std::lock_guard lk(mu_);
    return {allocations_, frees_, live_.size(), live_bytes_, peak_bytes_, limit_};
  }
  void reset_peak() { std::lock_guard lk(mu_); peak_bytes_ = live_bytes_; }
  void set_limit(size_t bytes) {
    std::lock_guard lk(mu_);
    RTUNE_CHECK(bytes <= kReserve / 2, "simulated CUDA device: memory limit {} exceeds {} bytes", bytes, kReserve / 2);
    RTUNE_CHECK(bytes >= live_bytes_, "simulated CUDA device: memory limit {} is below the {} bytes in use", bytes,
                live_bytes_);
    limit_ = bytes;
  }
  size_t limit() { std::lock_guard lk(mu_); return limit_; }

 private:
  static const Block* find(const std::map<size_t, Block>& m, size_t off, bool allow_end) {
    auto it = m.upper_bound(off);
    if (it == m.begin()) return nullptr;
    --it;
    const Block& b = it->second;
    if (off < b.off + b.size || (allow_end && off == b.off + b.size)) return &b;
    return nullptr;
  }

  std::string describe_locked(const void* p) {
    if (!contains(p)) return fmt::format("{} (host address)", p);
    size_t off = size_t(static_cast<const char*>(p) - base_);
    if (const Block* b = find(live_, off, false))
      return fmt::format("{} (offset {} in live device allocation #{} of {} bytes)", p, off - b->off, b->id, b->size);
    if (const Block* f = find(freed_, off, false))
      return fmt::format("{} is a use after free (offset {} in device allocation #{} of {} bytes, already freed)", p,
                         off - f->off, f->id, f->size);
    return fmt::format("{} (device address outside any allocation: past an end or never allocated)", p);
  }

  // First fit over the free spans; grows the used extent (high_) on demand.
  bool take_span(Block& b) {
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->second < b.span) continue;
      b.off = it->first;
      size_t rest = it->second - b.span;
      free_.erase(it);
      if (rest) free_[b.off + b.span] = rest;
      size_t need = round_up(b.off + b.span, page_size());
      if (need > high_) {
        high_ = need;
      }
      return true;
    }
    return false;
  }

  void evict_oldest() {
    size_t off = quarantine_.front();
    quarantine_.pop_front();
    Block b = freed_[off];
    freed_.erase(off);
    quarantine_bytes_ -= b.span;
    // Return the span to the free list, merged with its neighbours.
    size_t start = b.off, len = b.span;
    auto next = free_.find(start + len);
    if (next != free_.end()) { len += next->second; free_.erase(next); }
    auto prev = free_.lower_bound(start);
    if (prev != free_.begin()) {
      --prev;
      if (prev->first + prev->second == start) { start = prev->first; len += prev->second; free_.erase(prev); }
    }
    free_[start] = len;
  }
  void flush_quarantine() { while (!quarantine_.empty()) evict_oldest(); }

  // Gives the physical pages wholly inside [off, off+len) back to the OS.
  void discard_pages(size_t off, size_t len) {
    size_t lo = round_up(off, page_size()), hi = (off + len) / page_size() * page_size();
    if (hi > lo) madvise(base_ + lo, hi - lo, MADV_DONTNEED);
  }

  void protect(size_t off, size_t len, int prot) {
    if (mprotect(base_ + off, len, prot) != 0)
      rtune::fail("simulated CUDA device: mprotect failed: {}", std::strerror(errno));
  }

  // Pages of b's bytes: [lo, hi). The first and last may be shared with neighbours.
  std::pair<size_t, size_t> page_span(const Block& b) const {
    return {b.off / page_size(), (b.off + b.size + page_size() - 1) / page_size()};
  }
  void ref_page(size_t pg, int delta) {
    int& n = page_refs_[pg];
    n += delta;
    if (delta > 0 && n == 1) protect(pg * page_size(), page_size(), PROT_READ | PROT_WRITE);
    if (n == 0) {
      page_refs_.erase(pg);
      protect(pg * page_size(), page_size(), PROT_NONE);
    }
  }
  void open_block(Block& b) {
    if (b.open++ > 0) return;
    auto [lo, hi] = page_span(b);
    if (hi - lo > 2) protect((lo + 1) * page_size(), (hi - lo - 2) * page_size(), PROT_READ | PROT_WRITE);
    ref_page(lo, +1);
    if (hi - 1 != lo) ref_page(hi - 1, +1);
  }
  void close_block(Block& b) {
    if (--b.open > 0) return;
    auto [lo, hi] = page_span(b);
    if (hi - lo > 2) protect((lo + 1) * page_size(), (hi - lo - 2) * page_size(), PROT_NONE);
    ref_page(lo, -1);
    if (hi - 1 != lo) ref_page(hi - 1, -1);
  }

  std::mutex mu_;
  char* base_ = nullptr;
  size_t high_ = 0;  // bytes of the arena ever handed out (page-rounded)
  size_t limit_;
  std::atomic<int> lazy_guards_{0};
  std::vector<size_t> fault_opened_;
  std::unordered_map<size_t, int> page_refs_;  // open count of first/last pages of open blocks
  std::vector<size_t> lingering_;
  std::atomic<bool> has_lingering_{false};
  std::map<size_t, Block> live_, freed_;
  std::map<size_t, size_t> free_;  // offset -> length
  std::deque<size_t> quarantine_;
  size_t quarantine_bytes_ = 0;
  uint64_t allocations_ = 0, frees_ = 0;
  size_t live_bytes_ = 0, peak_bytes_ = 0;
};

Arena& arena() {
  static Arena* a = new Arena();  // never destroyed: kernels may still run during static destruction
  return *a;
}
Arena* arena_if_created = nullptr;

struct sigaction previous_segv;

void write_err(const char* s) {
  size_t n = std::strlen(s);
  while (n > 0) {
    ssize_t w = ::write(2, s, n);
    if (w <= 0) return;
    s += w;
    n -= size_t(w);
  }
}

void on_segv(int sig, siginfo_t* info, void* uctx) {
  const char* addr = static_cast<const char*>(info->si_addr);
  char buf[512];
  if (arena_if_created && arena_if_created->contains(addr)) {
    if (arena_if_created->fault_open(addr)) return;  // a whole-device guard is alive: retry the access
    char what[256];
    arena_if_created->describe_raw(addr, what, sizeof what);
    if (tl_fiber_guard_page)  // inside a simulated thread
      std::snprintf(buf, sizeof buf,
                    "\nrtune simulated CUDA device: a kernel touched device memory at %s that none of its pointer "
                    "arguments points into (a kernel may use the allocations its pointer arguments, or pointers "
                    "inside its struct arguments, point into).\n", what);
    else
      std::snprintf(buf, sizeof buf,
                    "\nrtune simulated CUDA device: host code dereferenced device memory at %s outside a kernel "
                    "launch. Device memory is only readable by kernels (launch()) and by stand-in libraries under "
                    "rt::SimDeviceAccess; copy it to the host with rt::memcpy_d2h first.\n", what);
    write_err(buf);
    std::abort();
  }
  const char* guard = tl_fiber_guard_page;
  if (guard && addr >= guard && addr < guard + kFiberGuardBytes) {
    write_err("\nrtune simulated CUDA device: stack overflow in a simulated GPU thread (fiber stack exhausted); "
              "kernels must not use large local arrays or deep recursion.\n");
    std::abort();
  }
  // Not ours: hand over to whoever was installed before (ASan, or the default action).
  if (previous_segv.sa_flags & SA_SIGINFO) {
    if (previous_segv.sa_sigaction) { previous_segv.sa_sigaction(sig, info, uctx); return; }
  } else if (previous_segv.sa_handler != SIG_DFL && previous_segv.sa_handler != SIG_IGN) {
    previous_segv.sa_handler(sig);
    return;
  }
  signal(sig, SIG_DFL);  // returning re-executes the faulting access, which now kills the process
}

// (Re)installs on_segv in front of whatever handler is current: a test framework or the app may
// have installed its own after us; faults outside the arena are passed on to it.
void install_segv_handler() {
  struct sigaction cur {};
  if (sigaction(SIGSEGV, nullptr, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_segv) return;
  struct sigaction sa {};
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &previous_segv);
}

// Publishes the arena to the signal handler once (a store on every call raced between threads).
struct ArenaInit {
  Arena& a = arena();
  ArenaInit() { arena_if_created = &a; }
};
Arena& A() { static ArenaInit i; return i.a; }

}  // namespace

void ensure_signal_stack() {
  thread_local bool done = false;
  if (done) return;
  done = true;
  stack_t cur{};
  if (sigaltstack(nullptr, &cur) == 0 && !(cur.ss_flags & SS_DISABLE)) return;  // ASan or the app has one
  stack_t ss{};
  ss.ss_size = 64 * 1024;
  ss.ss_sp = mmap(nullptr, ss.ss_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ss.ss_sp != MAP_FAILED) sigaltstack(&ss, nullptr);  // kept for the thread's life
}

bool overlaps_device_range(const void* p, size_t bytes) {
  auto a = reinterpret_cast<uintptr_t>(p), b = reinterpret_cast<uintptr_t>(A().base());
  size_t n = bytes ? bytes : 1;
  return a < b + kReserve && a + n > b;
}

std::string describe_address(const void* p) { return A().describe(p); }

}  // namespace rtune::cuda::sim

namespace rtune::cuda::rt {

void* device_malloc(size_t bytes) {
  sim::close_lingering();
  if (bytes == 0) return nullptr;
  return sim::A().allocate(bytes);
}
void device_free(void* p) {
  sim::close_lingering();
  if (p) sim::A().release(p);
}
void sim_check_device_range(const void* p, size_t bytes, const char* who) { sim::A().check_range(p, bytes, who); }
bool sim_is_device_address(const void* p) { return sim::A().contains(p); }
int sim_allocation_device(const void* p) { return sim::A().device_of(p); }
SimDeviceAccess::SimDeviceAccess() : all_(true) { sim::A().begin_lazy(); }
SimDeviceAccess::SimDeviceAccess(std::initializer_list<const void*> ptrs, const char* who) : all_(false) {
  try {
    for (const void* p : ptrs) opened_.push_back(sim::A().open_ptr(p, who));
  } catch (...) {
    for (size_t off : opened_) sim::A().close_off(off);
    throw;
  }
}
SimDeviceAccess::~SimDeviceAccess() {
  if (all_) sim::A().end_lazy();
  for (size_t off : opened_) sim::A().close_off(off);
}
void sim_access_until_next_call(const void* p, size_t bytes, const char* who) {
  sim::A().check_range(p, bytes, who);
  sim::A().linger(sim::A().open_ptr(p, who));
}
SimMemoryStats sim_memory_stats() { return sim::A().stats(); }
void sim_reset_peak() { sim::A().reset_peak(); }
void sim_set_memory_limit(size_t bytes) { sim::A().set_limit(bytes); }

}  // namespace rtune::cuda::rt

namespace rtune::cuda::sim {
size_t memory_limit() { return A().limit(); }
void close_lingering() { A().close_lingering(); }
size_t open_allocation(const void* p, const char* who) { return A().open_ptr(p, who); }
size_t open_allocation_if_live(const void* p) { return A().open_ptr(p, "", false); }
void close_allocation(size_t key) { A().close_off(key); }
void refresh_fault_handler() { install_segv_handler(); }
}  // namespace rtune::cuda::sim
