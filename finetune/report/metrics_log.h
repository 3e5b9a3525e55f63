// metrics.jsonl (one JSON object per epoch, the keys of EpochRecord::to_json) and metrics.csv (the
// same columns, empty cells where there was no validation), rewritten whole after every epoch from
// the trainer's history so a resumed run's logs stay one consistent sequence.
#pragma once
#include <filesystem>
#include <string>
#include <vector>
#include "finetune/trainer.h"

namespace rtune::finetune {

std::string metrics_jsonl(const std::vector<finetune::EpochRecord>& history);
std::string metrics_csv(const std::vector<finetune::EpochRecord>& history);
// Writes run_dir/metrics.jsonl and run_dir/metrics.csv atomically.
void write_metrics(const std::filesystem::path& run_dir, const std::vector<finetune::EpochRecord>& history);

}  // namespace rtune::finetune
