// The subcommands of the one `rtune` binary. Each lives in its own cmd_<name>.cpp and registers itself
// on the CLI11 app; main() in rtune.cpp calls every register function below and runs the chosen one.
#pragma once
#include <string>
#include <CLI/CLI.hpp>
#include "kernels/cpu/backend.h"

namespace rtune::tools {

// --threads: 0 means all cores; a negative count is refused, and so is more than this (a typo that
// would start that many threads).
inline constexpr int kMaxThreads = 1024;

// --cpu-backend eigen|onednn on `sub`: which library runs the CPU's float32 convolutions. Unset, the
// default stands (oneDNN when built, unless RTUNE_CPU_BACKEND=eigen). apply_cpu_backend() throws
// rtune::InvalidArgument for onednn in a build without it.
inline CLI::Option* add_cpu_backend_option(CLI::App* sub, std::string& value) {
  return sub->add_option("--cpu-backend", value,
                         "eigen | onednn: library for the CPU's float32 convolutions (default: onednn when built in; "
                         "float64 always uses eigen)")
      ->check(CLI::IsMember({"eigen", "onednn"}));
}
inline void apply_cpu_backend(const std::string& value) {
  if (!value.empty()) cpu::set_backend(cpu::parse_backend(value));
}

// --compute-threads on `sub`: the CPU kernels' threads (OpenMP), beside --threads (the loader's).
inline CLI::Option* add_compute_threads_option(CLI::App* sub, int& value) {
  return sub->add_option("--compute-threads", value,
                         "threads of the CPU's compute kernels (OpenMP; 0: OMP_NUM_THREADS or every core, or a "
                         "data-parallel rank's share of them)")
      ->check(CLI::Range(0, kMaxThreads));
}

// Each adds a subcommand to `app` whose callback does the work (throwing rtune::Error on bad input).
void register_convert(CLI::App& app);
void register_summary(CLI::App& app);
void register_train(CLI::App& app);
void register_eval(CLI::App& app);
void register_predict(CLI::App& app);
void register_demo(CLI::App& app);
void register_bench(CLI::App& app);

}  // namespace rtune::tools
