// The subcommands of the one `rtune` binary. Each lives in its own cmd_<name>.cpp and registers itself
// on the CLI11 app; main() in rtune.cpp calls every register function below and runs the chosen one.
#pragma once
#include <CLI/CLI.hpp>

namespace rtune::tools {

// --threads: 0 means all cores; a negative count is refused, and so is more than this (a typo that
// would start that many threads).
inline constexpr int kMaxThreads = 1024;

// Each adds a subcommand to `app` whose callback does the work (throwing rtune::Error on bad input).
void register_convert(CLI::App& app);
void register_summary(CLI::App& app);
void register_train(CLI::App& app);
void register_eval(CLI::App& app);
void register_predict(CLI::App& app);
void register_demo(CLI::App& app);
void register_bench(CLI::App& app);

}  // namespace rtune::tools
