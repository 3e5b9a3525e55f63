#include "finetune/val_samples.h"
#include <algorithm>
#include "engine/error.h"

namespace rtune::finetune {

ValSampleSelector::ValSampleSelector(int64_t num_classes, int64_t keep)
    : keep_(std::max<int64_t>(keep, 0)), wrong_(size_t(std::max<int64_t>(num_classes, 0))), right_(wrong_.size()) {}

bool ValSampleSelector::wants(int64_t label, bool correct) const {
  if (label < 0 || size_t(label) >= wrong_.size()) return false;
  // One class can fill the whole selection only when every other class is absent: keep up to `keep` of each kind.
  return int64_t((correct ? right_ : wrong_)[size_t(label)].size()) < keep_;
}

void ValSampleSelector::add(const ValPrediction& p) {
  RTUNE_CHECK(p.label >= 0 && size_t(p.label) < wrong_.size(), "ValSampleSelector: label {} outside [0, {})", p.label,
              wrong_.size());
  if (wants(p.label, p.correct())) (p.correct() ? right_ : wrong_)[size_t(p.label)].push_back(p);
}

std::vector<ValPrediction> ValSampleSelector::selection() const {
  std::vector<ValPrediction> out;
  auto at = [&](size_t c, size_t rank) -> const ValPrediction* {  // the class's rank-th candidate, mistakes first
    if (rank < wrong_[c].size()) return &wrong_[c][rank];
    rank -= wrong_[c].size();
    return rank < right_[c].size() ? &right_[c][rank] : nullptr;
  };
  for (size_t rank = 0; int64_t(out.size()) < keep_; ++rank) {
    bool any = false;
    for (size_t c = 0; c < wrong_.size() && int64_t(out.size()) < keep_; ++c)
      if (const ValPrediction* p = at(c, rank)) out.push_back(*p), any = true;
    if (!any) break;  // every class exhausted
  }
  std::stable_partition(out.begin(), out.end(), [](const ValPrediction& p) { return !p.correct(); });
  return out;
}

}  // namespace rtune::finetune
