// The ranks of a data-parallel run and the collectives between them (issue 20; docs/distributed.md).
// One process per rank. A process started by mpirun or srun with more than one rank talks MPI (Open
// MPI from Debian); a plain `rtune train` is rank 0 of 1 and every collective is the identity, so the
// single-process path runs the same code with nothing to send.
// Collectives are blocking and must be called by every rank in the same order with the same sizes:
// the trainer calls them at fixed points of each step and epoch.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace rtune::dist {

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Elementwise sum over the ranks, in place: every rank ends with the same sums.
  virtual void allreduce_sum(std::span<float> data) = 0;
  virtual void allreduce_sum(std::span<double> data) = 0;
  virtual void allreduce_sum(std::span<int64_t> data) = 0;
  // Overwrites `data` on every rank with rank `root`'s.
  virtual void broadcast(std::span<std::byte> data, int root) = 0;
  // Every rank's `text`, in rank order (lengths may differ).
  virtual std::vector<std::string> allgather(const std::string& text) = 0;
  // "single process" or "MPI (Open MPI 4.1.4), 2 ranks on host-a, host-b": for the log.
  virtual std::string describe() const = 0;
  // After a collective timed out on this rank: tells every other rank (their waits give up too, see
  // roll_call_pending) and returns the ranks that did not answer within a short grace: the hung or dead
  // ones. Point-to-point, so it works while the collective is stuck.
  virtual std::vector<int> roll_call() = 0;
  // True when another rank has started a roll call: a waiting rank then joins it and gives up as well.
  virtual bool roll_call_pending() = 0;
};

// "rank 1 did not answer (hung or dead)", "ranks 1, 3 did not answer ...", or, with none, that every
// rank answered (they wait in different collectives: a bug).
std::string describe_silent(const std::vector<int>& ranks);

// The process's communicator, made on first use: MPI when the launcher's environment says this process
// is one of several ranks (mpirun's OMPI_COMM_WORLD_SIZE; `srun --mpi=pmix`'s PMIX_RANK with Slurm's
// SLURM_STEP_NUM_TASKS; PMI_SIZE from MPICH's launcher or `srun --mpi=pmi2` with an MPI built for it),
// else one rank. A Slurm allocation's own variables do not count: a plain `rtune train` inside an sbatch
// script is one rank.
// Throws when a launcher started several ranks but this rtune was built without MPI, and when a plain
// `srun -n N` (no MPI plugin) started N tasks that could not talk.
Comm& world();
// The one-rank communicator (what world() is in a plain run), for code and tests that must not start MPI.
Comm& single_process();
// True where this build can talk MPI (libopenmpi-dev was found at configure time).
bool built_with_mpi();
// The rank count the launcher's environment announces (1 when none did); needs no MPI.
int launched_ranks();
// This process's rank as the launcher's environment announces it (0 when none did); needs no MPI.
int launched_rank();
// This process's rank among those on its machine, and their number, as the launcher announces them
// (OMPI_COMM_WORLD_LOCAL_RANK/_SIZE; Slurm's SLURM_LOCALID and SLURM_STEP_TASKS_PER_NODE): a GPU rank drives
// cuda:local_rank. 0 and 1 when none did.
int launched_local_rank();
int launched_local_size();
// How long a rank waits in a collective (MPI or NCCL) for the others before it ends the job: env
// RTUNE_DIST_TIMEOUT seconds, default 600. Legitimate waits are a slower rank's epoch tail, its validation
// shard, or rank 0 writing a checkpoint; a hung or stopped rank would otherwise hold every other forever.
double collective_timeout_seconds();
// A normal end: MPI_Finalize when MPI was started (every rank must reach it).
void finalize();
// An error on one rank: ends every rank of the job now (MPI_Abort) instead of leaving them waiting in
// the next collective. Does nothing with one rank.
void abort_job(int exit_code);

}  // namespace rtune::dist
