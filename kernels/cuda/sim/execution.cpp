// Executor of the simulated CUDA device (see execution.h). One block at a time per launch: its
// threads are fibers (fiber_switch.h, annotated for ASan) started lazily in a random order;
// a thread runs until it exits, reaches __syncthreads() or a warp collective. When nothing can run,
// a barrier reached by every thread of the block releases them all (in a new random order);
// anything else is a deadlock on the GPU and is reported. A fiber whose thread exits without
// suspending goes on with the next not-started thread on the same stack, so a kernel without
// barriers costs about one function call per thread and one pooled stack.
#include "kernels/cuda/sim/execution.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <vector>

#include "kernels/cuda/sim/fiber_switch.h"
#include "kernels/cuda/sim/internal.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define RT_ASAN 1
#endif

namespace rtune::cuda::sim {
namespace {

#ifdef RT_ASAN
constexpr size_t kStackBytes = 256 * 1024;  // ASan frames are several times larger
#else
constexpr size_t kStackBytes = 64 * 1024;
#endif
constexpr size_t kMaxSmem = 48 * 1024;  // dynamic shared memory without cudaFuncSetAttribute opt-in


// ---- seeds and the per-block random order
uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
uint64_t initial_seed() {
  if (const char* e = std::getenv("RTUNE_SIM_SEED")) return std::strtoull(e, nullptr, 0);
  return 0x5eed;
}
std::atomic<uint64_t> g_seed{initial_seed()};
std::atomic<uint64_t> g_launches{0};   // since the last set_seed: part of each block's seed
std::atomic<uint64_t> g_total_launches{0};

struct Rng {
  uint64_t s;
  uint32_t below(uint32_t n) { s = splitmix(s); return uint32_t((s >> 32) * n >> 32); }
  template <class V>
  void shuffle(V& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(uint32_t(i))]);
  }
};

// ---- fiber stacks: mmap'd with a PROT_NONE guard below, pooled per OS thread. Each stack's
// top is offset by a different multiple of 64 bytes ("colour") so the hot top frames of 256 fibers
// do not all fall into the same L1 cache sets (the stacks are a multiple of 4 KiB apart).
struct Stack {
  char* lo = nullptr;   // usable bottom (the guard page is below)
  char* top = nullptr;  // initial stack pointer
};
struct StackPool {
  std::vector<Stack> free;
  unsigned made = 0;
  Stack acquire() {
    if (!free.empty()) { Stack s = free.back(); free.pop_back(); return s; }
    void* m = mmap(nullptr, kStackBytes + kFiberGuardBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) rtune::fail("simulated CUDA device: cannot map a {} KiB fiber stack", kStackBytes / 1024);
    mprotect(m, kFiberGuardBytes, PROT_NONE);
    Stack s;
    s.lo = static_cast<char*>(m) + kFiberGuardBytes;
    s.top = s.lo + kStackBytes - (size_t(made++) * 7 % 64) * 64;
    return s;
  }
  void release(Stack s, bool abandoned) {
#ifdef RT_ASAN
    if (abandoned) __asan_unpoison_memory_region(s.lo, kStackBytes);  // frames never returned from
#else
    (void)abandoned;
#endif
    free.push_back(s);
  }
};

enum class St : uint8_t { not_started, runnable, at_barrier, at_warp, done };

struct SimThread {
  uint3 idx{};
  St st = St::not_started;
  Stack stack;
  fiber::Context ctx = nullptr;
  void* fake_stack = nullptr;  // ASan fake stack saved while suspended
  std::source_location site;   // where it waits
  uint64_t result = 0;         // of its last warp collective
};

struct Collective {
  WarpOp op;
  unsigned mask = 0, arrived = 0;
  int width = 32;
  std::source_location site;
  uint64_t vals[32];
  int args[32];
};

struct BlockRun {
  // launch
  dim3 block;
  unsigned n = 0;
  void (*body)(void*) = nullptr;
  void* ctx = nullptr;
  // block
  uint3 block_idx{};
  Rng rng{0};
  std::vector<SimThread> th;
  std::vector<unsigned> cur, next;  // this round's order (cur[pos] is next to run), the next round's threads
  size_t pos = 0;
  std::vector<std::vector<Collective>> pending;  // per warp
  std::vector<unsigned> exists, exited;          // per warp lane masks
  unsigned done = 0, at_barrier = 0, at_warp = 0;
  std::exception_ptr error;
  std::vector<unsigned char> smem;
  // the scheduler side of the switches
  fiber::Context sched_ctx = nullptr;
  const void* sched_bottom = nullptr;
  size_t sched_size = 0;
};

thread_local StackPool tl_pool;
thread_local BlockRun* tl_run = nullptr;
thread_local SimThread* tl_thread = nullptr;

// ---- switching (with ASan's fiber annotations)
inline void asan_start(void** fake, const void* bottom, size_t size) {
#ifdef RT_ASAN
  __sanitizer_start_switch_fiber(fake, bottom, size);
#else
  (void)fake, (void)bottom, (void)size;
#endif
}
inline void asan_finish(void* fake, const void** bottom, size_t* size) {
#ifdef RT_ASAN
  __sanitizer_finish_switch_fiber(fake, bottom, size);
#else
  (void)fake, (void)bottom, (void)size;
#endif
}

// A fiber runs one simulated thread and, when that one exits without ever suspending, goes on with
// the next not-yet-started thread of the round on the same stack: a kernel without barriers costs
// one context switch per run of threads instead of two per thread.
[[noreturn]] void fiber_entry(fiber::Transfer t) {
  BlockRun* r = tl_run;
  r->sched_ctx = t.from;
  asan_finish(nullptr, &r->sched_bottom, &r->sched_size);
  for (;;) {
    try {
      r->body(r->ctx);
    } catch (...) {
      if (!r->error) r->error = std::current_exception();
    }
    SimThread* me = tl_thread;
    me->st = St::done;
    unsigned tid = unsigned(me - r->th.data());
    r->exited[tid / 32] |= 1u << (tid % 32);
    ++r->done;
    if (r->error || r->pos >= r->cur.size() || r->th[r->cur[r->pos]].st != St::not_started) break;
    SimThread* next = &r->th[r->cur[r->pos++]];
    next->stack = me->stack;
    me->stack = Stack{};
    next->st = St::runnable;
    tl_thread = next;
    threadIdx = next->idx;
  }
  asan_start(nullptr, r->sched_bottom, r->sched_size);  // this fiber is gone: drop its fake stack
  fiber::jump(r->sched_ctx, nullptr);
  std::abort();  // never resumed
}

// From inside a fiber: back to the scheduler until released.
void suspend(SimThread* me) {
  BlockRun* r = tl_run;
  asan_start(&me->fake_stack, r->sched_bottom, r->sched_size);
  fiber::Transfer t = fiber::jump(r->sched_ctx, nullptr);
  r->sched_ctx = t.from;
  asan_finish(me->fake_stack, &r->sched_bottom, &r->sched_size);
}

// From the scheduler: run thread t until it suspends or exits (and, from a fresh start, the
// not-started threads after it that exit without suspending).
void run_thread(SimThread& t) {
  if (t.st == St::not_started) {
    t.stack = tl_pool.acquire();
    t.ctx = fiber::make(t.stack.top, size_t(t.stack.top - t.stack.lo), fiber_entry);
  }
  t.st = St::runnable;
  tl_thread = &t;
  threadIdx = t.idx;
  tl_fiber_guard_page = t.stack.lo - kFiberGuardBytes;
  void* fake = nullptr;
  asan_start(&fake, t.stack.lo, size_t(t.stack.top - t.stack.lo));
  fiber::Transfer back = fiber::jump(t.ctx, nullptr);
  asan_finish(fake, nullptr, nullptr);
  SimThread& last = *tl_thread;  // the thread the fiber ran last: it owns the stack now
  last.ctx = back.from;
  tl_fiber_guard_page = nullptr;
  tl_thread = nullptr;
  if (last.st == St::done) {
    tl_pool.release(last.stack, false);
    last.stack = Stack{};
  }
}

std::string where(const std::source_location& s) { return fmt::format("{}:{}", s.file_name(), s.line()); }
std::string block_name(const BlockRun& r) {
  return fmt::format("block ({},{},{})", r.block_idx.x, r.block_idx.y, r.block_idx.z);
}
const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::shfl_idx: return "__shfl_sync";
    case WarpOp::shfl_up: return "__shfl_up_sync";
    case WarpOp::shfl_down: return "__shfl_down_sync";
    case WarpOp::shfl_xor: return "__shfl_xor_sync";
    case WarpOp::ballot: return "__ballot_sync";
    case WarpOp::all: return "__all_sync";
    case WarpOp::any: return "__any_sync";
    case WarpOp::sync: return "__syncwarp";
  }
  return "?";
}

// The error when nothing can run but not every thread has exited.
[[noreturn]] void report_stuck(BlockRun& r) {
  std::string msg = fmt::format("simulated CUDA device: {} of a {}x{}x{} block cannot proceed: ", block_name(r),
                                r.block.x, r.block.y, r.block.z);
  if (r.at_warp == 0 && r.done > 0) {
    const SimThread* w = nullptr;
    for (const auto& t : r.th) if (t.st == St::at_barrier) { w = &t; break; }
    msg += fmt::format("{} threads wait at __syncthreads() ({}) but {} threads have exited without reaching it "
                       "(divergent barrier: undefined behaviour on the GPU)", r.at_barrier, where(w->site), r.done);
    rtune::fail("{}", msg);
  }
  for (size_t w = 0; w < r.pending.size(); ++w)
    for (const Collective& c : r.pending[w]) {
      unsigned missing = c.mask & ~c.arrived;
      std::string lanes;
      for (unsigned l = 0; l < 32; ++l)
        if (missing >> l & 1) {
          const SimThread& t = r.th[w * 32 + l];
          lanes += fmt::format(" {}({})", l, t.st == St::done ? "exited" : t.st == St::at_barrier ? "at __syncthreads" : "in another warp op");
        }
      msg += fmt::format("warp {}: lanes 0x{:08x} wait in {} (mask 0x{:08x}, {}) for lanes{}; ", w, c.arrived,
                         op_name(c.op), c.mask, where(c.site), lanes);
    }
  if (r.at_barrier) msg += fmt::format("{} threads wait at __syncthreads()", r.at_barrier);
  rtune::fail("{}", msg);
}

void release_barrier(BlockRun& r) {
  const std::source_location& first = r.th[0].site;
  for (unsigned i = 1; i < r.n; ++i) {
    const std::source_location& s = r.th[i].site;
    if (s.line() != first.line() ||
        (s.file_name() != first.file_name() && std::strcmp(s.file_name(), first.file_name()) != 0))
      rtune::fail("simulated CUDA device: {}: threads wait at different __syncthreads() calls: thread {} at {} and "
                  "thread 0 at {} (divergent barrier: undefined behaviour on the GPU)",
                  block_name(r), i, where(s), where(first));
  }
  r.at_barrier = 0;
  r.cur.resize(r.n);
  for (unsigned i = 0; i < r.n; ++i) { r.th[i].st = St::runnable; r.cur[i] = i; }
}

void abandon(BlockRun& r) {
  for (auto& t : r.th)
    if (t.stack.lo) { tl_pool.release(t.stack, true); t.stack = Stack{}; }
  for (auto& p : r.pending) p.clear();
}

void run_block(BlockRun& r) {
  r.done = r.at_barrier = r.at_warp = 0;
  r.error = nullptr;
  unsigned i = 0;
  for (unsigned z = 0; z < r.block.z; ++z)
    for (unsigned y = 0; y < r.block.y; ++y)
      for (unsigned x = 0; x < r.block.x; ++x, ++i) {
        r.th[i] = SimThread{};
        r.th[i].idx = {x, y, z};
      }
  for (unsigned w = 0; w < r.exists.size(); ++w) {
    unsigned lanes = std::min(32u, r.n - w * 32);
    r.exists[w] = lanes == 32 ? ~0u : (1u << lanes) - 1;
    r.exited[w] = 0;
  }
  if (!r.smem.empty()) std::memset(r.smem.data(), 0xFF, r.smem.size());  // uninitialised: NaN
  r.cur.resize(r.n);
  for (unsigned t = 0; t < r.n; ++t) r.cur[t] = t;
  for (;;) {
    while (!r.cur.empty()) {
      r.rng.shuffle(r.cur);
      for (r.pos = 0; r.pos < r.cur.size();) {
        run_thread(r.th[r.cur[r.pos++]]);
        if (r.error) { abandon(r); std::rethrow_exception(r.error); }
      }
      r.cur.swap(r.next);
      r.next.clear();
    }
    if (r.done == r.n) return;
    if (r.at_barrier == r.n) { release_barrier(r); continue; }
    abandon(r);
    report_stuck(r);
  }
}

void check_config(dim3 grid, dim3 block, size_t smem) {
  auto bad = [&](const std::string& why, int code) {
    throw rt::CudaError("kernel launch", code,
                        fmt::format("kernel launch <<<({},{},{}), ({},{},{}), {}>>>: {}", grid.x, grid.y, grid.z,
                                    block.x, block.y, block.z, smem, why));
  };
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535)
    bad("invalid grid dimensions (cudaErrorInvalidConfiguration)", 9);
  uint64_t n = uint64_t(block.x) * block.y * block.z;
  if (n == 0 || n > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64)
    bad("invalid block dimensions: at most 1024 threads, z <= 64 (cudaErrorInvalidConfiguration)", 9);
  if (smem > kMaxSmem) bad(fmt::format("{} bytes of dynamic shared memory exceed {} (cudaErrorInvalidValue)", smem, kMaxSmem), 1);
}

}  // namespace

void set_seed(uint64_t s) {
  g_seed = s;
  g_launches = 0;
}
uint64_t seed() { return g_seed; }
uint64_t launch_count() { return g_total_launches; }

namespace {
// Opens what a launch may touch, for its duration.
class LaunchAccess {
 public:
  explicit LaunchAccess(KernelArgs a) {
    keys_.reserve(a.count + 4);
    try {
      for (size_t i = 0; i < a.count; ++i)
        keys_.push_back(open_allocation(a.pointers[i], i < 16 ? kArgNames[i] : "kernel launch: pointer argument"));
      // Pointers inside struct arguments: every aligned word that is a live device address.
      for (size_t b = 0; b < a.blob_count; ++b)
        for (size_t off = 0; off + sizeof(void*) <= a.blobs[b].bytes; off += sizeof(void*)) {
          const void* w;
          std::memcpy(&w, static_cast<const char*>(a.blobs[b].data) + off, sizeof w);
          if (overlaps_device_range(w, 1)) keys_.push_back(open_allocation_if_live(w));
        }
    } catch (...) {
      close();
      throw;
    }
  }
  ~LaunchAccess() { close(); }

 private:
  static constexpr const char* kArgNames[16] = {
      "kernel launch: pointer argument 1", "kernel launch: pointer argument 2", "kernel launch: pointer argument 3",
      "kernel launch: pointer argument 4", "kernel launch: pointer argument 5", "kernel launch: pointer argument 6",
      "kernel launch: pointer argument 7", "kernel launch: pointer argument 8", "kernel launch: pointer argument 9",
      "kernel launch: pointer argument 10", "kernel launch: pointer argument 11", "kernel launch: pointer argument 12",
      "kernel launch: pointer argument 13", "kernel launch: pointer argument 14", "kernel launch: pointer argument 15",
      "kernel launch: pointer argument 16"};
  void close() {
    for (size_t k : keys_) close_allocation(k);
    keys_.clear();
  }
  std::vector<size_t> keys_;
};
}  // namespace

void run_grid(dim3 grid, dim3 block, size_t smem, rt::Stream s, KernelArgs args, void (*body)(void*), void* ctx) {
  if (tl_run) rtune::fail("simulated CUDA device: a kernel launched another kernel (dynamic parallelism is not simulated)");
  close_lingering();
  check_config(grid, block, smem);
  check_stream(s, "kernel launch");
  ensure_signal_stack();
  const uint64_t launch = g_launches++;
  ++g_total_launches;
  thread_local BlockRun r;  // reused across launches: no per-launch allocation in the steady state
  r.block = block;
  r.n = block.x * block.y * block.z;
  r.body = body;
  r.ctx = ctx;
  r.th.resize(r.n);
  r.pending.resize((r.n + 31) / 32);
  r.exists.resize(r.pending.size());
  r.exited.resize(r.pending.size());
  r.smem.resize(smem);
  r.cur.reserve(r.n);
  r.next.reserve(r.n);
  gridDim = grid;
  blockDim = block;
  LaunchAccess access(args);
  struct Active {
    Active(BlockRun* p) { tl_run = p; }
    ~Active() { tl_run = nullptr; }
  } active(&r);
  const uint64_t base = splitmix(g_seed ^ splitmix(launch));
  uint64_t linear = 0;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x, ++linear) {
        blockIdx = {x, y, z};
        r.block_idx = {x, y, z};
        r.rng.s = splitmix(base + linear);
        run_block(r);
      }
  refresh_fault_handler();
}

void sync_block(std::source_location at) {
  SimThread* me = tl_thread;
  if (!me) rtune::fail("__syncthreads() called outside a simulated kernel ({})", where(at));
  me->st = St::at_barrier;
  me->site = at;
  ++tl_run->at_barrier;
  suspend(me);
}

void* dynamic_shared_memory() {
  if (!tl_run) rtune::fail("dynamic shared memory used outside a simulated kernel");
  return tl_run->smem.empty() ? nullptr : tl_run->smem.data();
}

unsigned active_mask() {
  SimThread* me = tl_thread;
  if (!me) rtune::fail("__activemask() called outside a simulated kernel");
  unsigned w = unsigned(me - tl_run->th.data()) / 32;
  return tl_run->exists[w] & ~tl_run->exited[w];
}

namespace {
// This lane's result once every lane of c has arrived (PTX shfl.sync / vote.sync semantics).
uint64_t collective_result(const BlockRun& r, unsigned warp, const Collective& c, unsigned lane) {
  if (c.op == WarpOp::sync) return 0;
  if (c.op == WarpOp::ballot || c.op == WarpOp::all || c.op == WarpOp::any) {
    unsigned ballot = 0;
    for (unsigned l = 0; l < 32; ++l)
      if ((c.mask >> l & 1) && c.vals[l]) ballot |= 1u << l;
    if (c.op == WarpOp::ballot) return ballot;
    return c.op == WarpOp::all ? ballot == c.mask : ballot != 0;
  }
  const int w = c.width, b = c.args[lane] & 31, l = int(lane);
  const int lo = l & ~(w - 1), hi = lo + w - 1;  // this lane's segment
  int j = l;
  switch (c.op) {
    case WarpOp::shfl_idx: j = lo | (c.args[lane] & (w - 1)); break;
    case WarpOp::shfl_up: j = l - b; if (j < lo) j = l; break;
    case WarpOp::shfl_down: j = l + b; if (j > hi) j = l; break;
    case WarpOp::shfl_xor: j = l ^ b; if (j > hi) j = l; break;
    default: break;
  }
  if (!(c.mask >> j & 1))
    rtune::fail("simulated CUDA device: {}: {} at {}: lane {} of warp {} reads lane {}, which {} (mask 0x{:08x}); "
                "the GPU returns an undefined value", block_name(r), op_name(c.op), where(c.site), lane, warp, j,
                (r.exists[warp] >> j & 1) ? "is not in the mask" : "does not exist in this block", c.mask);
  return c.vals[j];
}
}  // namespace

uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t bits, int arg, int width, std::source_location at) {
  SimThread* me = tl_thread;
  if (!me) rtune::fail("{} called outside a simulated kernel ({})", op_name(op), where(at));
  BlockRun& r = *tl_run;
  const unsigned tid = unsigned(me - r.th.data()), warp = tid / 32, lane = tid % 32;
  if (!(mask >> lane & 1))
    rtune::fail("simulated CUDA device: {}: {} at {}: calling lane {} of warp {} is not in its mask 0x{:08x}",
                block_name(r), op_name(op), where(at), lane, warp, mask);
  if (width < 1 || width > 32 || !std::has_single_bit(unsigned(width)))
    rtune::fail("simulated CUDA device: {} at {}: width {} is not a power of two in [1, 32]", op_name(op), where(at), width);
  const unsigned eff = mask & r.exists[warp];
  if (eff & r.exited[warp])
    rtune::fail("simulated CUDA device: {}: {} at {}: mask 0x{:08x} of warp {} names lanes 0x{:08x} that have exited",
                block_name(r), op_name(op), where(at), mask, warp, eff & r.exited[warp]);
  auto& pend = r.pending[warp];
  Collective* c = nullptr;
  for (auto& p : pend)
    if (p.mask & eff) { c = &p; break; }
  if (c && (c->mask != eff || c->op != op || c->width != width))
    rtune::fail("simulated CUDA device: {}: warp {} lane {} calls {} (mask 0x{:08x}) at {} while lanes 0x{:08x} wait "
                "in {} (mask 0x{:08x}) at {}: the lanes of a *_sync mask must make the same call",
                block_name(r), warp, lane, op_name(op), mask, where(at), c->arrived, op_name(c->op), c->mask,
                where(c->site));
  if (!c) {
    c = &pend.emplace_back();
    c->op = op;
    c->mask = eff;
    c->arrived = 0;
    c->width = width;
    c->site = at;
  }
  c->vals[lane] = bits;
  c->args[lane] = arg;
  c->arrived |= 1u << lane;
  if (c->arrived != c->mask) {
    me->st = St::at_warp;
    me->site = at;
    ++r.at_warp;
    suspend(me);
    return me->result;
  }
  // Last lane in: compute every lane's result, wake the others (they run after this round).
  Collective done = *c;
  pend.erase(pend.begin() + (c - pend.data()));
  for (unsigned l = 0; l < 32; ++l) {
    if (!(done.mask >> l & 1)) continue;
    SimThread& t = r.th[warp * 32 + l];
    t.result = collective_result(r, warp, done, l);
    if (l != lane) {
      t.st = St::runnable;
      --r.at_warp;
      r.next.push_back(warp * 32 + l);
    }
  }
  return me->result;
}

}  // namespace rtune::cuda::sim
