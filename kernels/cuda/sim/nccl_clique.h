// Internal to the NCCL stand-in: the ranks of one communicator meet in a POSIX shared-memory segment
// named by the unique id, so a rank may be a thread of this process or another process on this host
// (mpirun -np N of a simulated build). The segment holds, per rank, its state, pid, simulated device,
// the last barrier it reached and its record of the current collective, plus one staging slot per rank
// through which collectives move data chunk by chunk. Every shared field is a lock-free std::atomic
// (address-free, so it works between processes) or is published by one (release/acquire).
#pragma once
#include <nccl.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace rtune::sim::nccl {

// What a stand-in call failed with: the status it returns and the message ncclGetLastError gives.
struct Failure : std::runtime_error {
  ncclResult_t code;
  Failure(ncclResult_t c, const std::string& message) : std::runtime_error(message), code(c) {}
};

inline constexpr size_t kStagingBytes = size_t(1) << 20;  // per rank per chunk
inline constexpr int kMaxRanks = 1024;

// One rank's call, compared across ranks before any data moves.
struct CallRecord {
  int32_t kind = 0;  // 1 all-reduce, 2 broadcast
  int32_t dtype = 0, op = 0, root = 0;
  uint64_t count = 0, seq = 0;
};

enum RankState : uint32_t { kNotJoined = 0, kJoined = 1, kLeft = 2 };

struct alignas(64) RankSlot {
  std::atomic<uint32_t> state{kNotJoined};
  std::atomic<int32_t> pid{0};
  std::atomic<int32_t> device{-1};
  std::atomic<uint64_t> phase{0};  // the last barrier this rank arrived at (they count up from 1)
  CallRecord record[2];            // by collective sequence parity: a rank is at most one collective ahead
};

struct SharedHeader {
  std::atomic<uint64_t> magic{0};  // stored last by the creator: the rest is initialised
  int32_t nranks = 0;
  std::atomic<int32_t> joined{0};
  std::atomic<uint32_t> fail_claim{0};  // the first rank to poison the clique writes fail_text
  std::atomic<int32_t> fail_code{0};    // set after fail_text: every waiting rank then fails with it
  char fail_text[512] = {};
};

static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<int32_t>::is_always_lock_free &&
                  std::atomic<uint32_t>::is_always_lock_free,
              "the shared segment needs lock-free (address-free) atomics");

// One rank's view of the segment (its own mapping).
class Clique {
 public:
  // Creates or opens the segment and joins as `rank`, then waits until all nranks have joined.
  // Throws Failure: nranks disagreeing with the creator's, the rank joined twice, a timeout or a
  // dead peer. The segment is unlinked once every rank has mapped it (or on failure), so a rank
  // that dies later leaks nothing.
  Clique(const std::string& name, int nranks, int rank, int device, double timeout_s);
  ~Clique();  // marks this rank as left and unmaps; never waits
  Clique(const Clique&) = delete;
  Clique& operator=(const Clique&) = delete;

  int nranks() const { return nranks_; }
  int rank() const { return rank_; }
  RankSlot& slot(int r) const;
  std::byte* staging(int r) const;

  // Arrives at the next barrier and waits for every rank to reach it. `what` names the collective
  // for messages ("collective #3 (ncclAllReduce)"). Throws Failure: ncclRemoteError when a rank that
  // has not arrived left the communicator or its process is gone, ncclSystemError after the timeout,
  // the poison code when another rank poisoned the clique.
  void barrier(const std::string& what);
  // Records a failure every rank sees at its next wait (the first poisoning wins).
  void poison(ncclResult_t code, const std::string& text);

 private:
  template <class Arrived>
  void wait(const std::string& what, Arrived arrived);
  std::string name_;
  int nranks_, rank_;
  double timeout_s_;
  uint64_t phase_ = 0;
  void* map_ = nullptr;
  size_t bytes_ = 0;
  SharedHeader* hdr_ = nullptr;
};

}  // namespace rtune::sim::nccl
