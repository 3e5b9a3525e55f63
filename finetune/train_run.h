// `rtune train` as a library call (the CLI in tools/cmd_train.cpp only parses flags into TrainArgs):
// open the data, build or load the model, run the Trainer, and keep the run folder up to date after
// every epoch: best.safetensors (an rtune model file, by val top-1), last.ckpt (the full training
// state, atomic), metrics.jsonl / metrics.csv / steps.csv / confusion.json (report/metrics_log.h),
// report.html. `resume` continues a run folder exactly.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>
#include "finetune/trainer.h"

namespace rtune::finetune {

struct TrainArgs {
  // data
  std::string data;                 // ImageFolder root; DIR/train + DIR/val (or valid, validation) when both exist
  std::string train_list, val_list; // list files "path label" (paths relative to list_root or the list's folder)
  std::string list_root;
  std::string val;                  // validation ImageFolder
  double val_split = 0;             // hold out this fraction of the training data (stratified, seeded)
  std::string classes;              // class names file (list-file datasets)
  bool strict = false;              // a file that does not decode stops the run (else: skipped, with a warning)
  // model
  std::string arch;                 // "" = from --weights, or resnet18 from scratch; else must match the weights
  int64_t width = 64;               // from-scratch models only
  std::string weights;              // .pth / .safetensors / rtune model file; "" = from scratch
  bool reset_head = false;          // re-initialise fc even when the class count matches
  // recipe
  int64_t batch = 32, image_size = 224;
  std::string transforms, val_transforms;  // "" = the presets for image_size
  // epochs, optimizer, scheduler, clipping, freezing; its device, precision and normalisations are filled
  // in by the run from `device`, `precision` and the transforms
  finetune::TrainConfig train{.epochs = 10};
  uint64_t seed = 0;
  // Data-parallel runs: "linear" multiplies --lr (and --unfreeze-lr) by the rank count, the linear-scaling
  // rule for a global batch N times larger (Goyal et al. 2017); "none" leaves them as given.
  std::string lr_scale = "none";
  std::string device = "auto";
  std::string precision = "auto";   // auto (bf16 on a CUDA GPU that has it) | fp32 | bf16
  int threads = 0;                  // loader threads; 0 = all cores
  int64_t cache_mib = 0;            // decoded-image cache per loader, MiB; 0 = none (speed only: not saved)
  std::string out;                  // run folder
  bool progress = true;             // a progress bar when stderr is a terminal
  int64_t stop_after = 0;           // stop once this many epochs are done (resumable); 0 = run all (not saved)
  double time_budget_s = 0;         // stop after the epoch past which the next would end beyond this many seconds
                                    // of this process's training (resumable); 0 = no limit (not saved)
  nlohmann::json to_json() const;
  static TrainArgs from_json(const nlohmann::json& j);
  // Throws rtune::InvalidArgument naming the flag of the first bad setting (train.validate() included).
  // run_training() and resume_training() call it once, before any work.
  void validate() const;
};

struct TrainOutcome {
  std::filesystem::path run_dir, best, last, report;
  double best_top1 = 0;
  int64_t best_epoch = 0;
  std::vector<finetune::EpochRecord> history;
  std::vector<finetune::StepRecord> steps;
  std::vector<std::string> class_names;
  double seconds = 0;
};

// Hooks for callers that want more than the printed lines (the demo).
struct TrainIO {
  std::function<void(const std::string&)> out;  // lines for stdout (default: printf)
};

// Throws rtune::Error for bad arguments (caught by main and printed as "rtune: error: …").
TrainOutcome run_training(const TrainArgs& args, const TrainIO& io = {});
// Continues the run in `run_dir` from its last.ckpt (args from the checkpoint); `epochs` > 0 raises the
// epoch count, `device` / `threads` / `cache_mib` may differ (no effect on the results on the CPU).
TrainOutcome resume_training(const std::filesystem::path& run_dir, int64_t epochs, const std::string& device,
                             int threads, int64_t cache_mib = 0, int64_t stop_after = 0, double time_budget_s = 0,
                             const TrainIO& io = {});
// "90", "90s", "20m", "1.5h" -> seconds (> 0); throws rtune::Error naming the text otherwise.
double parse_duration(const std::string& text);

// "cpu", "cuda", "cuda:N", "auto". A CUDA device that this build cannot use is a clear error, never a
// silent CPU run; "auto" picks cuda:0 when it works, else the CPU, and says which in `note`.
Device resolve_device(const std::string& spec, std::string* note);

// The device spec of this rank: with several ranks, "auto" and "cuda" become cuda:LOCAL_RANK (one process
// per GPU, as torchrun's ranks), or cuda:0 where each rank sees a single GPU (CUDA_VISIBLE_DEVICES set per
// rank, Slurm's --gpus-per-task); an explicit cuda:N is kept. More local ranks than GPUs is an error.
std::string rank_device_spec(const std::string& spec, const dist::Comm& comm);

// The default transform presets for an image size: train RandomResizedCrop + flip, eval Resize(S*256/224)
// + CenterCrop(S), both with ImageNet normalisation.
std::string default_train_transforms(int64_t size);
std::string default_eval_transforms(int64_t size);

}  // namespace rtune::finetune
