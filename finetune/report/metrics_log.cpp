#include "finetune/report/metrics_log.h"
#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include "engine/error.h"
#include "finetune/run_folder.h"
#include "io/formats/checkpoint.h"

namespace rtune::finetune {

namespace {
std::string lr_cell(double lr) { return std::isnan(lr) ? std::string() : fmt::format("{:.17g}", lr); }

void put(const std::filesystem::path& path, const std::string& s) {
  io::write_file_atomic(path, std::as_bytes(std::span(s.data(), s.size())));
}
}  // namespace

std::string metrics_jsonl(const std::vector<finetune::EpochRecord>& history) {
  std::string out;
  for (auto& r : history) out += r.to_json().dump() + "\n";
  return out;
}

std::string metrics_csv(const std::vector<finetune::EpochRecord>& history) {
  // Group columns in the order the records name them (the optimizer's), after the fixed columns.
  std::vector<std::string> groups;
  for (auto& r : history)
    for (auto& [name, lr] : r.group_lrs)
      if (std::find(groups.begin(), groups.end(), name) == groups.end()) groups.push_back(name);
  std::string out = "epoch,phase,train_loss,train_top1,val_loss,val_top1,val_top5,lr,seconds,images_per_s,best";
  for (auto& g : groups) out += ",lr_" + g;
  out += "\n";
  for (auto& r : history) {
    auto v = [&](double x) { return r.has_val ? fmt::format("{:.17g}", x) : std::string(); };
    out += fmt::format("{},{},{:.17g},{:.17g},{},{},{},{:.17g},{:.3f},{:.1f},{}", r.epoch, r.phase, r.train_loss,
                       r.train_top1, v(r.val_loss), v(r.val_top1), v(r.val_top5), r.lr, r.seconds, r.images_per_s,
                       r.best ? 1 : 0);
    for (auto& g : groups) {
      auto it = std::find_if(r.group_lrs.begin(), r.group_lrs.end(), [&](auto& p) { return p.first == g; });
      out += ',';
      if (it != r.group_lrs.end()) out += lr_cell(it->second);
    }
    out += "\n";
  }
  return out;
}

std::string steps_csv(const std::vector<std::string>& groups, const std::vector<finetune::StepRecord>& steps) {
  std::string out = "step,epoch,loss";
  for (auto& g : groups) out += ",lr_" + g;
  out += "\n";
  for (auto& s : steps) {
    out += fmt::format("{},{},{:.17g}", s.step + 1, s.epoch, s.loss);
    for (size_t g = 0; g < groups.size(); ++g) {
      out += ',';
      if (g < s.group_lrs.size()) out += lr_cell(s.group_lrs[g]);
    }
    out += "\n";
  }
  return out;
}

std::string confusion_json(const finetune::EvalResult& eval, int64_t epoch, const std::vector<std::string>& class_names) {
  const auto& m = eval.metrics;
  const size_t c = size_t(m.num_classes());
  RTUNE_CHECK(class_names.size() == c, "{}: {} class names for {} classes", run_file::confusion, class_names.size(), c);
  nlohmann::json matrix = nlohmann::json::array();
  for (size_t t = 0; t < c; ++t)
    matrix.push_back(std::vector<int64_t>(m.confusion().begin() + std::ptrdiff_t(t * c),
                                          m.confusion().begin() + std::ptrdiff_t((t + 1) * c)));
  nlohmann::json j{{"epoch", epoch}, {"top1", m.top1()}, {"count", m.count()}, {"classes", class_names},
                   {"matrix", matrix}};
  return j.dump() + "\n";
}

void write_metrics(const std::filesystem::path& run_dir, const std::vector<finetune::EpochRecord>& history) {
  put(run_dir / run_file::metrics_jsonl, metrics_jsonl(history));
  put(run_dir / run_file::metrics_csv, metrics_csv(history));
}

void write_metrics(const std::filesystem::path& run_dir, const finetune::Trainer& trainer,
                   const std::vector<std::string>& class_names) {
  write_metrics(run_dir, trainer.history());
  put(run_dir / run_file::steps_csv, steps_csv(trainer.lr_groups(), trainer.steps()));
  if (const finetune::EvalResult* best = trainer.best_eval())
    put(run_dir / run_file::confusion, confusion_json(*best, trainer.best_epoch(), class_names));
}

}  // namespace rtune::finetune
