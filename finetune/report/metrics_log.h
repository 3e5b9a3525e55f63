// The run folder's machine-readable logs, rewritten whole after every epoch from the trainer's state so
// a resumed run's logs are the same files an uninterrupted run writes:
//   metrics.jsonl  one JSON object per epoch (the keys of EpochRecord::to_json, group_lrs included)
//   metrics.csv    the same, empty cells where there was no validation, then one lr_<group> column per group
//   steps.csv      one row per optimizer step: step (1-based, as on the charts), epoch, loss, lr_<group>...
//   confusion.json the confusion matrix of the best epoch's validation (the weights in best.safetensors)
// Numbers are written with 17 significant digits (exact doubles); a frozen group's LR is an empty cell.
#pragma once
#include <filesystem>
#include <string>
#include <vector>
#include "finetune/trainer.h"

namespace rtune::finetune {

std::string metrics_jsonl(const std::vector<finetune::EpochRecord>& history);
std::string metrics_csv(const std::vector<finetune::EpochRecord>& history);
// `groups`: Trainer::lr_groups(); a step without group LRs (from an older checkpoint) gets empty cells.
std::string steps_csv(const std::vector<std::string>& groups, const std::vector<finetune::StepRecord>& steps);
// {"epoch", "top1", "count", "classes", "matrix"}: matrix[t][p] counts images of true class t predicted as p.
std::string confusion_json(const finetune::EvalResult& eval, int64_t epoch, const std::vector<std::string>& class_names);
// Writes run_dir/metrics.jsonl and run_dir/metrics.csv atomically.
void write_metrics(const std::filesystem::path& run_dir, const std::vector<finetune::EpochRecord>& history);
// Writes every log above atomically (confusion.json once there is a best validation).
void write_metrics(const std::filesystem::path& run_dir, const finetune::Trainer& trainer,
                   const std::vector<std::string>& class_names);

}  // namespace rtune::finetune
