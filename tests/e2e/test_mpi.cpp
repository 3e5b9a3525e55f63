// e2e_mpi (issue 20): `mpirun -np 2 rtune train` on CPU ranks. Two ranks of batch B follow the trajectory
// of one rank of batch 2B (the same samples per step: DistributedSampler's shards, gradients averaged);
// ranks that start different runs are refused naming the difference; a rank killed mid-run takes the
// job down within a bounded time, and the run folder still resumes. Needs mpirun (Open MPI): CI installs
// it; without it the test skips visibly.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fmt/format.h>

#include "io/formats/checkpoint.h"
#include "kernels/dist/comm.h"
#include "tests/core/test_util.h"
#include "tests/e2e/cli_run.h"
#include "tests/e2e/mpi_run.h"
#include "tests/train/train_test_util.h"

using namespace rtune;
namespace fs = std::filesystem;
using test::kMpirun;
using test::run_rtune;
using test::step_losses;

namespace {

const bool kHaveMpirun = (test::require_mpirun(), true);

std::string args(const fs::path& data, const fs::path& out, int batch, const std::string& extra = "", int size = 16,
                 double lr = 0.05) {
  return test::train_args(data, out, batch, extra, size, lr);
}

}  // namespace

TEST_CASE("2 ranks x batch 4 = 1 rank x batch 8: per-step losses and final weights, frozen backbone") {
  test::TempDir tmp("mpi_equiv");
  const fs::path data = tmp.path / "data";
  test::make_shapes(data, 6, 3, 16);  // 4 classes x 6 = 24 training images: 3 steps of 8, no padding
  const std::string common = "--epochs 3 --freeze backbone --sched cosine";
  test::Run one = run_rtune(tmp.path, args(data, tmp.path / "one", 8, common), "OMP_NUM_THREADS=1");
  REQUIRE_MESSAGE(one.rc == 0, one.err);
  test::Run two = run_rtune(tmp.path, args(data, tmp.path / "two", 4, common), "OMP_NUM_THREADS=1 " + kMpirun + " -np 2");
  REQUIRE_MESSAGE(two.rc == 0, std::string(two.err + two.out));
  CHECK(two.out.find("2 ranks, 1 threads each; batch 4 per rank, global batch 8") != std::string::npos);
  CHECK(two.out.find("done in") == two.out.rfind("done in"));  // rank 0 alone prints

  const std::vector<double> a = step_losses(tmp.path / "one"), b = step_losses(tmp.path / "two");
  REQUIRE(a.size() == 9);
  REQUIRE(b.size() == a.size());
  // The mean of two half-batch means vs one mean, in float32: rounding only (the 1e-5 bound).
  for (size_t i = 0; i < a.size(); ++i) CHECK(std::abs(a[i] - b[i]) <= 1e-5 * std::abs(a[i]));
  const io::Checkpoint ca = io::load_checkpoint(tmp.path / "one" / "last.ckpt");
  const io::Checkpoint cb = io::load_checkpoint(tmp.path / "two" / "last.ckpt");
  CHECK(cb.state.at("ranks") == 2);
  size_t compared = 0;
  for (const auto& [name, t] : ca.tensors) {
    if (name.rfind("model.", 0) != 0 || t.dtype() != DType::f32) continue;
    const Tensor* u = cb.find(name);
    REQUIRE(u);
    CAPTURE(name);
    // 9 SGD steps from the same start with gradients equal to ~1e-7 relative: fp32 tolerance.
    CHECK_CLOSE(*u, t, 1e-5, 1e-6);
    ++compared;
  }
  CHECK(compared > 100);
  // Validation is sharded without padding and its counts summed: the same accuracy as one rank.
  const auto ha = ca.state.at("history"), hb = cb.state.at("history");
  for (size_t e = 0; e < ha.size(); ++e) {
    CHECK(ha[e].at("val_top1") == hb[e].at("val_top1"));
    CHECK(std::abs(ha[e].at("val_loss").get<double>() - hb[e].at("val_loss").get<double>()) <= 1e-5);
  }
}

TEST_CASE("--sync-bn, every layer training: 2 ranks x batch 4 = 1 rank x batch 8; without it they differ") {
  test::TempDir tmp("mpi_syncbn");
  const fs::path data = tmp.path / "data";
  test::make_shapes(data, 6, 3, 32);
  // One epoch of 3 steps. Every layer of this tiny model training at batch 8 is chaotic: a rounding
  // difference grows ~10x per step (measured: 1e-7 at step 1, 1e-2 by step 6, between runs that differ
  // only in the order of float32 sums), so the 1e-5 bound holds for the first steps only.
  const std::string common = "--epochs 1 --freeze none";
  test::Run one = run_rtune(tmp.path, args(data, tmp.path / "one", 8, common, 32, 0.01), "OMP_NUM_THREADS=1");
  REQUIRE_MESSAGE(one.rc == 0, one.err);
  test::Run sync = run_rtune(tmp.path, args(data, tmp.path / "sync", 4, common + " --sync-bn", 32, 0.01),
                             "OMP_NUM_THREADS=1 " + kMpirun + " -np 2");
  REQUIRE_MESSAGE(sync.rc == 0, std::string(sync.err + sync.out));
  test::Run local = run_rtune(tmp.path, args(data, tmp.path / "local", 4, common, 32, 0.01),
                              "OMP_NUM_THREADS=1 " + kMpirun + " -np 2");
  REQUIRE_MESSAGE(local.rc == 0, std::string(local.err + local.out));
  const std::vector<double> a = step_losses(tmp.path / "one"), b = step_losses(tmp.path / "sync"),
                            c = step_losses(tmp.path / "local");
  REQUIRE(a.size() == 3);
  REQUIRE(b.size() == a.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(std::abs(a[i] - b[i]) <= 1e-5 * std::abs(a[i]));
  // Per-rank statistics (DDP's default) normalise each half-batch by itself: another loss from step 1.
  CHECK(std::abs(a[0] - c[0]) > 1e-4 * std::abs(a[0]));
  const io::Checkpoint ca = io::load_checkpoint(tmp.path / "one" / "last.ckpt");
  const io::Checkpoint cb = io::load_checkpoint(tmp.path / "sync" / "last.ckpt");
  for (const auto& [name, t] : ca.tensors) {
    if (name.rfind("model.", 0) != 0 || t.dtype() != DType::f32) continue;
    CAPTURE(name);
    CHECK_CLOSE(*cb.find(name), t, 1e-4, 1e-6);  // every layer, BN running statistics included
  }
}

TEST_CASE("ranks that start different runs are refused, naming the rank and what differs") {
  test::TempDir tmp("mpi_mismatch");
  const fs::path data = tmp.path / "data";
  test::make_shapes(data, 2, 1, 16);
  const std::string bin = RTUNE_BIN;
  const test::Job job = test::run_job(fmt::format("{} -np 1 {} {} : -np 1 {} {}", kMpirun, bin,
                                                 args(data, tmp.path / "r", 4, "--epochs 1"), bin,
                                                 args(data, tmp.path / "r", 4, "--epochs 2")),
                                     tmp.path / "log.txt");
  const std::string& log = job.log;
  CAPTURE(log);
  CHECK(job.status != 0);
  CHECK(log.find("the arguments of rank(s) 1 differ from rank 0's (epochs: 1 vs 2)") != std::string::npos);
  CHECK(log.find("rtune (rank 0 of 2): error:") != std::string::npos);
}

TEST_CASE("a rank killed mid-run: the other exits non-zero within 60 s; the last checkpoint resumes") {
  test::TempDir tmp("mpi_kill");
  const fs::path data = tmp.path / "data", run = tmp.path / "run";
  test::make_shapes(data, 4, 2, 16);
  const std::string bin = RTUNE_BIN, a = args(data, run, 4, "--epochs 100000");
  // Rank 1 is SIGKILLed after 6 s, in the middle of some epoch (an epoch takes milliseconds here).
  const test::Job job = test::run_job(
      fmt::format("OMP_NUM_THREADS=1 {} -np 1 {} {} : -np 1 timeout -s KILL 6 {} {}", kMpirun, bin, a, bin, a),
      tmp.path / "log.txt");
  CAPTURE(job.log);
  CHECK(job.status != 0);
  CHECK(job.seconds < 60);
  CHECK(job.log.find("rank 1") != std::string::npos);  // mpirun names the rank that died
  REQUIRE(fs::exists(run / "last.ckpt"));
  const int64_t done = io::load_checkpoint(run / "last.ckpt").state.at("epoch").get<int64_t>();
  CHECK(done >= 1);
  test::Run more = run_rtune(tmp.path, fmt::format("train --resume {} --no-progress --stop-after {}", run.string(), done + 1),
                             "OMP_NUM_THREADS=1 " + kMpirun + " -np 2");
  CHECK_MESSAGE(more.rc == 0, std::string(more.err + more.out));
  CHECK(io::load_checkpoint(run / "last.ckpt").state.at("epoch").get<int64_t>() == done + 1);
  // Another rank count: one process continues the 2-rank run, saying what changes.
  test::Run single = run_rtune(tmp.path, fmt::format("train --resume {} --no-progress --stop-after {}", run.string(), done + 2),
                               "OMP_NUM_THREADS=1");
  CHECK_MESSAGE(single.rc == 0, std::string(single.err + single.out));
  CHECK(single.out.find("the run had 2 rank(s) and continues on 1: the epochs' shuffled orders are the same, but from "
                        "here on they are dealt to the ranks differently and the global batch is 4 (was 8)") !=
        std::string::npos);
  CHECK(io::load_checkpoint(run / "last.ckpt").state.at("ranks") == 1);
}

TEST_CASE("a rank that hangs: the others give up after RTUNE_DIST_TIMEOUT, name it, and the job ends") {
  test::TempDir tmp("mpi_hang");
  const fs::path data = tmp.path / "data", run = tmp.path / "run";
  test::make_shapes(data, 4, 2, 16);
  const std::string bin = RTUNE_BIN, a = args(data, run, 4, "--epochs 5");
  // Of 3 ranks, rank 2 stops itself (SIGSTOP: alive, never answering) at the end of epoch 1; ranks 0 and 1
  // wait in epoch 2's first all-reduce for 10 s (a margin over any legitimate wait in a loaded CI), then
  // the first to give up calls the roll, the other answers and gives up too, and MPI_Abort takes the
  // stopped rank down.
  const test::Job job = test::run_job(
      fmt::format("OMP_NUM_THREADS=1 RTUNE_DIST_TIMEOUT=10 {} -np 2 {} {} : -np 1 env RTUNE_TEST_KILL_AT=stop:epoch-end@1 {} {}",
                  kMpirun, bin, a, bin, a),
      tmp.path / "log.txt");
  CAPTURE(job.log);
  CHECK(job.status != 0);
  CHECK(job.seconds < 60);
  // The roll call names the stopped rank, and only it: rank 1, waiting too, answered.
  CHECK(job.log.find("rank 2 did not answer (hung or dead)") != std::string::npos);
  CHECK(job.log.find("rank 1 did not answer") == std::string::npos);
  // Whichever of ranks 0 and 1 gave up first may end the job before the other prints.
  CHECK(job.log.find(" of 3): error: the all-reduce waited ") != std::string::npos);
  REQUIRE(fs::exists(run / "last.ckpt"));  // epoch 1 was committed before the hang
  CHECK(io::load_checkpoint(run / "last.ckpt").state.at("epoch").get<int64_t>() == 1);
}

TEST_CASE("--lr-scale linear multiplies the LR by the rank count and says so; other values are refused") {
  test::TempDir tmp("mpi_lrscale");
  const fs::path data = tmp.path / "data";
  test::make_shapes(data, 2, 1, 16);
  test::Run r = run_rtune(tmp.path, args(data, tmp.path / "r", 4, "--epochs 1 --lr-scale linear"),
                          "OMP_NUM_THREADS=1 " + kMpirun + " -np 2");
  REQUIRE_MESSAGE(r.rc == 0, std::string(r.err + r.out));
  CHECK(r.out.find("--lr-scale linear: lr 0.05 x 2 ranks = 0.1") != std::string::npos);
  const std::string steps = test::slurp(tmp.path / "r" / "steps.csv");
  CHECK(steps.find(",0.10000000000000001\n") != std::string::npos);  // the head group's LR column
  test::Run bad = run_rtune(tmp.path, args(data, tmp.path / "b", 4, "--epochs 1 --lr-scale sqrt"));
  CHECK(bad.rc == 105);
  CHECK(bad.err.find("--lr-scale sqrt: must be none or linear") != std::string::npos);
}
