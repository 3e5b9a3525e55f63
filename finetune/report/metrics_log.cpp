#include "finetune/report/metrics_log.h"
#include <fmt/format.h>
#include "io/formats/checkpoint.h"

namespace rtune::finetune {

std::string metrics_jsonl(const std::vector<finetune::EpochRecord>& history) {
  std::string out;
  for (auto& r : history) out += r.to_json().dump() + "\n";
  return out;
}

std::string metrics_csv(const std::vector<finetune::EpochRecord>& history) {
  std::string out = "epoch,phase,train_loss,train_top1,val_loss,val_top1,val_top5,lr,seconds,images_per_s,best\n";
  for (auto& r : history) {
    auto v = [&](double x) { return r.has_val ? fmt::format("{:.17g}", x) : std::string(); };
    out += fmt::format("{},{},{:.17g},{:.17g},{},{},{},{:.17g},{:.3f},{:.1f},{}\n", r.epoch, r.phase, r.train_loss,
                       r.train_top1, v(r.val_loss), v(r.val_top1), v(r.val_top5), r.lr, r.seconds, r.images_per_s,
                       r.best ? 1 : 0);
  }
  return out;
}

void write_metrics(const std::filesystem::path& run_dir, const std::vector<finetune::EpochRecord>& history) {
  auto put = [&](const char* name, const std::string& s) {
    io::write_file_atomic(run_dir / name, std::as_bytes(std::span(s.data(), s.size())));
  };
  put("metrics.jsonl", metrics_jsonl(history));
  put("metrics.csv", metrics_csv(history));
}

}  // namespace rtune::finetune
