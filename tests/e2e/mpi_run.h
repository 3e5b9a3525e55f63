// What the data-parallel end-to-end tests share (e2e_mpi on CPU ranks, e2e_mpi_gpu on GPU ranks): the
// mpirun line, the training arguments of the tiny runs, the per-step losses a run logged, and a whole
// job run through the shell with its wall time and combined log.
#pragma once
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "kernels/dist/comm.h"
#include "tests/e2e/cli_run.h"

namespace rtune::test {

// Every rank on this machine's cores, root or not (CI runs as root), whatever the slot count.
inline const std::string kMpirun = "timeout -s KILL 300 mpirun --allow-run-as-root --oversubscribe --bind-to none";

// ctest shows the whole binary as skipped (exit 77) where it cannot run: no mpirun, or no MPI in the build.
inline void require_mpirun() {
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0 || !dist::built_with_mpi()) {
    std::fprintf(stderr, "no mpirun, or rtune built without MPI: data-parallel tests skipped\n");
    std::exit(77);
  }
}

inline std::string train_args(const std::filesystem::path& data, const std::filesystem::path& out, int batch,
                              const std::string& extra = "", int size = 16, double lr = 0.05,
                              const std::string& device = "cpu") {
  return fmt::format("train --data {} --out {} --arch resnet18 --pretrained none --width 4 --batch {} --opt sgd "
                     "--lr {} --momentum 0.9 --transforms random_crop={}:pad=2,hflip --val-transforms center_crop={} "
                     "--seed 3 --threads 1 --no-progress --device {} --feature-cache 0 {}",
                     data.string(), out.string(), batch, lr, size, size, device, extra);
}

// The loss column of a run's steps.csv, in step order.
inline std::vector<double> step_losses(const std::filesystem::path& run) {
  std::vector<double> v;
  std::istringstream in(slurp(run / "steps.csv"));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    const size_t a = line.find(','), b = line.find(',', a + 1), c = line.find(',', b + 1);
    v.push_back(std::stod(line.substr(b + 1, c - b - 1)));
  }
  return v;
}

struct Job {
  int status = 0;        // std::system's
  double seconds = 0;    // wall time of the whole job
  std::string log;       // every rank's stdout and stderr
};
// Runs `cmd` (an mpirun line) with stdout and stderr into `log_file`.
inline Job run_job(const std::string& cmd, const std::filesystem::path& log_file) {
  const auto t0 = std::chrono::steady_clock::now();
  Job j;
  j.status = std::system(fmt::format("{} >{} 2>&1", cmd, log_file.string()).c_str());
  j.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  j.log = slurp(log_file);
  return j;
}

}  // namespace rtune::test
