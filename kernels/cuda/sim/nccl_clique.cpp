// The NCCL stand-in's rendezvous: a shared-memory segment per communicator, barriers that poll, and
// the two ways out of a wait that would hang on real NCCL (a peer gone, or RTUNE_SIM_NCCL_TIMEOUT).
#include "kernels/cuda/sim/nccl_clique.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <new>
#include <thread>
#include <vector>

namespace rtune::sim::nccl {
namespace {

constexpr uint64_t kSegmentMagic = 0x72746e63636c7631ull;  // "rtnccl v1"
// Slot states: claimed while the joiner writes its pid and device, joined once they are published.
constexpr uint32_t kClaimed = 1, kJoinedState = 2, kLeftState = 3;
using Clock = std::chrono::steady_clock;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }
size_t slots_offset() { return round_up(sizeof(SharedHeader), 64); }
size_t staging_offset(int nranks) { return round_up(slots_offset() + size_t(nranks) * sizeof(RankSlot), 4096); }
size_t segment_bytes(int nranks) { return staging_offset(nranks) + size_t(nranks) * kStagingBytes; }

// A process that exited: gone (ESRCH), or a zombie its parent has not reaped yet.
bool process_gone(int pid) {
  if (kill(pid, 0) == -1 && errno == ESRCH) return true;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return false;
  const size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && (line[paren + 2] == 'Z' || line[paren + 2] == 'X');
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string s;
  for (int r : ranks) s += (s.empty() ? "" : ", ") + std::to_string(r);
  return s;
}

[[noreturn]] void system_failure(const std::string& what) {
  throw Failure(ncclSystemError, fmt::format("{}: {}", what, std::strerror(errno)));
}

}  // namespace

RankSlot& Clique::slot(int r) const {
  return reinterpret_cast<RankSlot*>(static_cast<char*>(map_) + slots_offset())[r];
}
std::byte* Clique::staging(int r) const {
  return static_cast<std::byte*>(map_) + staging_offset(nranks_) + size_t(r) * kStagingBytes;
}

Clique::Clique(const std::string& name, int nranks, int rank, int device, double timeout_s)
    : name_(name), nranks_(nranks), rank_(rank), timeout_s_(timeout_s) {
  const std::string who = "ncclCommInitRank";
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  int fd = -1;
  bool creator = false;
  while (fd < 0) {  // create it, or open the one another rank created (it may vanish in between)
    fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd >= 0) { creator = true; break; }
    if (errno != EEXIST) system_failure(fmt::format("{}: shm_open({})", who, name));
    fd = shm_open(name.c_str(), O_RDWR, 0600);
    if (fd < 0 && errno != ENOENT) system_failure(fmt::format("{}: shm_open({})", who, name));
  }
  try {
    if (creator) {
      bytes_ = segment_bytes(nranks);
      if (ftruncate(fd, off_t(bytes_)) != 0)
        system_failure(fmt::format("{}: sizing shared memory {} to {} bytes (is /dev/shm big enough?)", who, name, bytes_));
    } else {  // the creator sizes it right after creating it
      struct stat st {};
      while (fstat(fd, &st) == 0 && st.st_size == 0 && Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (st.st_size == 0)
        throw Failure(ncclSystemError, fmt::format("{}: the rank that created {} never initialised it", who, name));
      bytes_ = size_t(st.st_size);
    }
    map_ = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map_ == MAP_FAILED) {
      map_ = nullptr;
      system_failure(fmt::format("{}: mmap of {}", who, name));
    }
    close(fd);
    fd = -1;
    if (creator) {
      hdr_ = new (map_) SharedHeader();
      hdr_->nranks = nranks;
      for (int r = 0; r < nranks; ++r) new (&slot(r)) RankSlot();
      hdr_->magic.store(kSegmentMagic, std::memory_order_release);
    } else {
      hdr_ = static_cast<SharedHeader*>(map_);
      while (hdr_->magic.load(std::memory_order_acquire) != kSegmentMagic && Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (hdr_->magic.load(std::memory_order_acquire) != kSegmentMagic)
        throw Failure(ncclSystemError, fmt::format("{}: the rank that created {} never initialised it", who, name));
      if (hdr_->nranks != nranks) {
        const std::string text = fmt::format("{}: rank {} was given nranks {}, but the communicator was created with "
                                             "nranks {}: every rank must pass the same nranks", who, rank, nranks, hdr_->nranks);
        nranks_ = hdr_->nranks;
        poison(ncclInvalidUsage, text);
        throw Failure(ncclInvalidUsage, text);
      }
    }
  } catch (...) {
    if (fd >= 0) close(fd);
    if (map_) munmap(map_, bytes_);
    shm_unlink(name.c_str());
    throw;
  }

  RankSlot& me = slot(rank);
  uint32_t expected = kNotJoined;
  if (!me.state.compare_exchange_strong(expected, kClaimed, std::memory_order_acq_rel)) {
    const std::string text = fmt::format("{}: rank {} joined the communicator twice (each rank must be unique)", who, rank);
    poison(ncclInvalidUsage, text);
    munmap(map_, bytes_);
    shm_unlink(name.c_str());
    throw Failure(ncclInvalidUsage, text);
  }
  me.pid.store(getpid(), std::memory_order_relaxed);
  me.device.store(device, std::memory_order_relaxed);
  me.state.store(kJoinedState, std::memory_order_release);
  // Every rank has mapped the segment once the last one joins: unlink it then, so nothing is left
  // behind whichever rank dies later.
  if (hdr_->joined.fetch_add(1, std::memory_order_acq_rel) + 1 == nranks) shm_unlink(name.c_str());
  try {
    wait(fmt::format("{} (rank {} of {})", who, rank, nranks),
         [&](int r) { return slot(r).state.load(std::memory_order_acquire) >= kJoinedState; });
    // Ranks of one process share its simulated GPUs: two on one device is what real NCCL refuses
    // ("Duplicate GPU detected"). Ranks in other processes each have their own simulated devices.
    for (int r = 0; r < nranks; ++r)
      if (r != rank && slot(r).pid.load() == getpid() && slot(r).device.load() == device)
        throw Failure(ncclInvalidUsage, fmt::format("{}: ranks {} and {} both use simulated CUDA device {} in one "
                                                    "process (real NCCL: Duplicate GPU detected); call "
                                                    "cudaSetDevice with a different device per rank first",
                                                    who, std::min(r, rank), std::max(r, rank), device));
  } catch (...) {
    me.state.store(kLeftState, std::memory_order_release);
    munmap(map_, bytes_);
    shm_unlink(name.c_str());  // a rank that never came finds no stale segment
    throw;
  }
}

Clique::~Clique() {
  slot(rank_).state.store(kLeftState, std::memory_order_release);
  munmap(map_, bytes_);
}

void Clique::poison(ncclResult_t code, const std::string& text) {
  if (hdr_->fail_claim.exchange(1, std::memory_order_acq_rel) != 0) return;
  std::snprintf(hdr_->fail_text, sizeof hdr_->fail_text, "%s", text.c_str());
  hdr_->fail_code.store(int32_t(code), std::memory_order_release);
}

void Clique::barrier(const std::string& what) {
  ++phase_;
  slot(rank_).phase.store(phase_, std::memory_order_release);
  wait(what, [&](int r) { return slot(r).phase.load(std::memory_order_acquire) >= phase_; });
}

template <class Arrived>
void Clique::wait(const std::string& what, Arrived arrived) {
  const auto start = Clock::now();
  auto next_liveness_check = start;
  const int self_pid = getpid();
  for (int spin = 0;; ++spin) {
    std::vector<int> missing;
    for (int r = 0; r < nranks_; ++r)
      if (!arrived(r)) missing.push_back(r);
    if (missing.empty()) return;

    if (int32_t code = hdr_->fail_code.load(std::memory_order_acquire))
      throw Failure(ncclResult_t(code), hdr_->fail_text);
    std::vector<int> left, dead;
    for (int r : missing)
      if (slot(r).state.load(std::memory_order_acquire) == kLeftState) left.push_back(r);
    if (!left.empty())
      throw Failure(ncclRemoteError, fmt::format("{}: rank(s) {} left the communicator (ncclCommDestroy, "
                                                 "ncclCommAbort or a failed ncclCommInitRank) before arriving",
                                                 what, rank_list(left)));
    const auto now = Clock::now();
    if (now >= next_liveness_check) {
      for (int r : missing) {
        const int pid = slot(r).pid.load(std::memory_order_relaxed);
        if (pid != 0 && pid != self_pid && process_gone(pid)) dead.push_back(r);
      }
      if (!dead.empty())
        throw Failure(ncclRemoteError, fmt::format("{}: rank(s) {} exited (process gone) before arriving; "
                                                   "rank(s) {} had not arrived", what, rank_list(dead), rank_list(missing)));
      next_liveness_check = now + std::chrono::milliseconds(20);
    }
    if (now - start > std::chrono::duration<double>(timeout_s_))
      throw Failure(ncclSystemError, fmt::format("{}: timed out after {} s (RTUNE_SIM_NCCL_TIMEOUT) waiting for "
                                                 "rank(s) {}", what, timeout_s_, rank_list(missing)));
    if (spin < 200)
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace rtune::sim::nccl
