// The single-process communicator, the launcher detection and the choice of world() (comm.h).
#include "kernels/dist/comm.h"

#include <cstdlib>
#include <memory>
#include <mutex>

#include <fmt/format.h>

#include "engine/error.h"
#include "kernels/dist/device_comm.h"

namespace rtune::dist {

#if RTUNE_HAVE_MPI
std::unique_ptr<Comm> make_mpi_comm();  // kernels/dist/mpi_comm.cpp
bool mpi_started();
void mpi_finalize();
void mpi_abort(int exit_code);
#endif

namespace {

class SingleProcess final : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(std::span<float>) override {}
  void allreduce_sum(std::span<double>) override {}
  void allreduce_sum(std::span<int64_t>) override {}
  void broadcast(std::span<std::byte>, int root) override {
    RTUNE_CHECK(root == 0, "broadcast from rank {} in a single-process run", root);
  }
  std::vector<std::string> allgather(const std::string& text) override { return {text}; }
  std::string describe() const override { return "single process"; }
  std::vector<int> roll_call() override { return {}; }
  bool roll_call_pending() override { return false; }
};

int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : 0;
}

}  // namespace

std::string describe_silent(const std::vector<int>& ranks) {
  if (ranks.empty()) return "every rank answered a roll call, so they wait in different collectives (a bug)";
  std::string list;
  for (int r : ranks) list += (list.empty() ? "" : ", ") + std::to_string(r);
  return fmt::format("rank{} {} did not answer (hung or dead)", ranks.size() == 1 ? "" : "s", list);
}

Comm& single_process() {
  static SingleProcess one;
  return one;
}

// `srun --mpi=pmix` (Open MPI's way under Slurm) sets PMIX_RANK but no size: the step's task count is
// Slurm's. A plain `srun` sets only Slurm's variables: the tasks could not talk (see world()).
static bool slurm_pmix_task() { return std::getenv("PMIX_RANK") && env_int("SLURM_STEP_NUM_TASKS") > 0; }

int launched_ranks() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (int n = env_int(name); n > 0) return n;
  if (slurm_pmix_task()) return env_int("SLURM_STEP_NUM_TASKS");
  return 1;
}

int launched_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"})
    if (const char* v = std::getenv(name); v && *v) return std::atoi(v);
  return 0;
}

// Slurm's tasks on this node: SLURM_STEP_TASKS_PER_NODE lists the nodes' counts ("2(x3),1": 2 on each of
// the first three nodes, then 1), SLURM_NODEID says which entry is this node's. 0 when absent or garbled.
static int slurm_tasks_on_this_node() {
  const char* list = std::getenv("SLURM_STEP_TASKS_PER_NODE");
  const char* node = std::getenv("SLURM_NODEID");
  if (!list || !node) return 0;
  long want = std::atol(node), at = 0;
  for (const char* p = list; *p;) {
    char* end = nullptr;
    const long tasks = std::strtol(p, &end, 10);
    if (end == p) return 0;
    long repeat = 1;
    if (end[0] == '(' && end[1] == 'x') {
      repeat = std::strtol(end + 2, &end, 10);
      if (*end != ')') return 0;
      ++end;
    }
    if (want < at + repeat) return int(tasks);
    at += repeat;
    p = *end == ',' ? end + 1 : end;
  }
  return 0;
}

int launched_local_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"})
    if (const char* v = std::getenv(name); v && *v) return std::atoi(v);
  return 0;
}

int launched_local_size() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"})
    if (int n = env_int(name); n > 0) return n;
  if (int n = slurm_tasks_on_this_node(); n > 0) return n;
  return launched_ranks();
}

double collective_timeout_seconds() {
  static const double t = [] {
    const char* e = std::getenv("RTUNE_DIST_TIMEOUT");
    const double v = e && *e ? std::atof(e) : 0;
    return v > 0 ? v : 600.0;
  }();
  return t;
}

bool built_with_mpi() { return RTUNE_HAVE_MPI != 0; }

Comm& world() {
  static std::unique_ptr<Comm> comm;
  static std::once_flag once;
  std::call_once(once, [] {
    const int n = launched_ranks();
    // srun without an MPI plugin: N tasks that cannot talk would each train alone, racing for one folder.
    if (n <= 1 && std::getenv("SLURM_PROCID") && env_int("SLURM_STEP_NUM_TASKS") > 1)
      fail("srun started {} tasks without an MPI plugin, so each would train alone: use `srun --mpi=pmix` (Open "
           "MPI), or `mpirun` inside the allocation", env_int("SLURM_STEP_NUM_TASKS"));
    if (n <= 1) return;  // single_process()
#if RTUNE_HAVE_MPI
    comm = make_mpi_comm();
#else
    fail("the launcher started {} ranks, but this rtune was built without MPI (install libopenmpi-dev and rebuild), "
         "so each would train alone", n);
#endif
  });
  return comm ? *comm : single_process();
}

void finalize() {
  release_device_world();  // NCCL before MPI: its destroy is a last exchange with the peers
#if RTUNE_HAVE_MPI
  if (mpi_started()) mpi_finalize();
#endif
}

void abort_job(int exit_code) {
#if RTUNE_HAVE_MPI
  if (mpi_started()) mpi_abort(exit_code);
#endif
  (void)exit_code;
}

}  // namespace rtune::dist
