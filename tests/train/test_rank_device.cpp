// Which GPU a data-parallel rank drives (finetune/train_run.h rank_device_spec): cuda:LOCAL_RANK, cuda:0
// where each rank sees one GPU, an error where ranks would share one or outnumber the GPUs; a single
// process and explicit devices are left alone. The GPU count comes from the simulated device
// (RTUNE_SIM_DEVICES) in the sim build; a build without CUDA checks the pass-through cases only.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "engine/error.h"
#include "finetune/train_run.h"
#include "kernels/dist/comm.h"
#include "kernels/dist/device_comm.h"
#include "kernels/ops.h"

using namespace rtune;

namespace {
// Rank `r` of `n` in name only: rank_device_spec asks nothing else of the communicator.
class NamedRanks final : public dist::Comm {
 public:
  NamedRanks(int r, int n) : r_(r), n_(n) {}
  int rank() const override { return r_; }
  int size() const override { return n_; }
  void allreduce_sum(std::span<float>) override {}
  void allreduce_sum(std::span<double>) override {}
  void allreduce_sum(std::span<int64_t>) override {}
  void broadcast(std::span<std::byte>, int) override {}
  std::vector<std::string> allgather(const std::string& t) override { return {t}; }
  std::string describe() const override { return "named ranks"; }
  std::vector<int> roll_call() override { return {}; }
  bool roll_call_pending() override { return false; }

 private:
  int r_, n_;
};

std::string spec_with(const char* sim_devices, const char* local_rank, const char* local_size, const char* visible,
                      int rank, const std::string& spec) {
  setenv("RTUNE_SIM_DEVICES", sim_devices, 1);
  setenv("OMPI_COMM_WORLD_LOCAL_RANK", local_rank, 1);
  setenv("OMPI_COMM_WORLD_LOCAL_SIZE", local_size, 1);
  if (visible) setenv("CUDA_VISIBLE_DEVICES", visible, 1);
  else unsetenv("CUDA_VISIBLE_DEVICES");
  NamedRanks comm(rank, 4);
  return finetune::rank_device_spec(spec, comm);
}
}  // namespace

TEST_CASE("one process, explicit devices and the CPU are left as given") {
  CHECK(finetune::rank_device_spec("cuda", dist::single_process()) == "cuda");
  CHECK(spec_with("4", "1", "4", nullptr, 1, "cpu") == "cpu");
  CHECK(spec_with("4", "1", "4", nullptr, 1, "cuda:3") == "cuda:3");
}

TEST_CASE("ranks on this machine under Slurm: SLURM_STEP_TASKS_PER_NODE's entry for SLURM_NODEID") {
  unsetenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  unsetenv("MPI_LOCALNRANKS");
  setenv("SLURM_STEP_TASKS_PER_NODE", "2(x3),1", 1);
  for (auto [node, want] : {std::pair{"0", 2}, {"2", 2}, {"3", 1}}) {
    setenv("SLURM_NODEID", node, 1);
    CHECK(dist::launched_local_size() == want);
  }
  unsetenv("SLURM_STEP_TASKS_PER_NODE");
  unsetenv("SLURM_NODEID");
  CHECK(dist::launched_local_size() == dist::launched_ranks());  // nothing says: all ranks on this machine
}

TEST_CASE("a GPU rank drives cuda:LOCAL_RANK; one visible GPU per rank is cuda:0; sharing or too few GPUs fail") {
  setenv("RTUNE_SIM_DEVICES", "2", 1);
  unsetenv("CUDA_VISIBLE_DEVICES");
  if (kernels::cuda_device_count() == 0) {
    MESSAGE("no CUDA backend in this build: the GPU cases are not checked");
    return;
  }
  CHECK(spec_with("2", "1", "2", nullptr, 3, "cuda") == "cuda:1");
  CHECK(spec_with("2", "0", "2", nullptr, 2, "auto") == "cuda:0");
  CHECK(spec_with("1", "1", "2", "5", 3, "cuda") == "cuda:0");  // Slurm gave each rank its own GPU
  CHECK_THROWS_WITH_AS(spec_with("1", "1", "2", nullptr, 1, "cuda"),
                       doctest::Contains("2 ranks on this machine would share its one GPU"), Error);
  CHECK_THROWS_WITH_AS(spec_with("2", "2", "3", nullptr, 2, "auto"),
                       doctest::Contains("rank 2 is local rank 2 of 3 on this machine, which has 2 GPUs"), Error);
}

// The communicator for device tensors is made once, for the rank's GPU; asking it for another GPU later
// is an error, not a silent all-reduce on the first one's stream.
TEST_CASE("device_world: one GPU per process; another GPU later is refused") {
  setenv("RTUNE_SIM_DEVICES", "2", 1);
  unsetenv("CUDA_VISIBLE_DEVICES");
  if (kernels::cuda_device_count() < 2) {
    MESSAGE("skipped: needs two (simulated) GPUs");
    return;
  }
  dist::Comm& host = dist::single_process();
  dist::DeviceComm& first = dist::device_world(host, Device::cuda(0));
  CHECK(&dist::device_world(host, Device::cuda(0)) == &first);
  CHECK_THROWS_WITH_AS(dist::device_world(host, Device::cuda(1)), doctest::Contains("serves cuda:0, not cuda:1"), Error);
  CHECK(&dist::device_world(host, Device::cpu()) != &first);  // host tensors have their own
  dist::release_device_world();
}
