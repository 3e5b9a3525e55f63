// The run folder of `rtune train` and the order its files are written in, so that a process killed
// at any instant (kill -9, power cut, the OOM killer) leaves a folder that the next start repairs.
//
// last.ckpt is the single commit point: it holds everything the other files are derived from (the
// training state, every epoch's metrics, the last validation). After epoch N:
//   1. if N is the best epoch, the model goes to best.pending-epoch-N.safetensors (atomic write);
//   2. last.ckpt is replaced (atomic write): epoch N is committed;
//   3. best.pending-epoch-N.safetensors is renamed to best.safetensors;
//   4. metrics.jsonl, metrics.csv, then report.html are rewritten from the checkpoint's state.
// Every start in the folder (a new run or --resume) first removes the temp files an interrupted
// atomic write leaves. A resume then finishes what the killed run had committed: a pending best
// model whose epoch the checkpoint names as best is promoted (any other pending one is deleted: its
// epoch was never committed and will be run again), and the metrics files and report.html are
// rewritten from the checkpoint. So --resume of a run killed after its last checkpoint still ends
// with complete metrics and a current report, and best.safetensors always holds the epoch the
// checkpoint calls best.
#pragma once
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace rtune::finetune {

// The files of a run folder (the pending best models aside), each name written only here: their writers
// use these constants, and is_run_temp_file() knows a killed write's temp file by them.
namespace run_file {
inline constexpr std::string_view checkpoint = "last.ckpt", best_model = "best.safetensors",
                                  metrics_jsonl = "metrics.jsonl", metrics_csv = "metrics.csv",
                                  steps_csv = "steps.csv", confusion = "confusion.json", report = "report.html";
inline constexpr std::array all{checkpoint, best_model, metrics_jsonl, metrics_csv, steps_csv, confusion, report};
}  // namespace run_file

class RunFolder {
 public:
  // Creates `dir` when missing and locks it (flock on `.rtune.lock`: a second rtune train in the same
  // folder is refused while this one runs), then removes stale temp files. Throws rtune::Error naming
  // `flag` (--out / --resume) and the reason when the folder cannot be created or written.
  RunFolder(const std::filesystem::path& dir, const std::string& flag);
  ~RunFolder();
  RunFolder(const RunFolder&) = delete;
  RunFolder& operator=(const RunFolder&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  size_t removed_temp_files() const { return removed_; }

  // Where the model of best epoch `epoch` waits until the checkpoint that names it is written.
  std::filesystem::path pending_best(int64_t epoch) const;
  // Renames pending_best(epoch) to best.safetensors (and makes the rename durable).
  void promote_best(int64_t epoch) const;
  // After a restore: promotes the pending best model of `best_epoch` when there is one, deletes every
  // other pending one (pass best_epoch 0 to delete all). Returns whether one was promoted.
  bool settle_pending_best(int64_t best_epoch) const;

 private:
  std::filesystem::path dir_;
  int lock_fd_ = -1;
  size_t removed_ = 0;
};

// True for the temp files rtune's atomic writes leave in a run folder when interrupted:
// "<file>.tmp-<pid>" (write_file_atomic) and ".<file>.tmpXXXXXX" (write_safetensors).
bool is_run_temp_file(const std::string& filename);

// Test hook: with RTUNE_TEST_KILL_AT=<point>@<epoch> in the environment, the process kills itself
// with SIGKILL when it reaches `point` after epoch `epoch` (tests/e2e/test_cli_kill.cpp); with
// RTUNE_TEST_KILL_AT=stop:<point>@<epoch> it stops itself (SIGSTOP): a process that hangs, alive
// (tests/e2e/test_mpi.cpp).
void kill_point(const char* point, int64_t epoch);
// The same for a point inside a write: true when the hook asks to be killed there.
bool kill_point_armed(const char* point, int64_t epoch);

}  // namespace rtune::finetune
