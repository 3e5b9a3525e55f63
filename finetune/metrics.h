// Classification metrics accumulated over batches: mean cross-entropy, top-1 / top-5 accuracy as
// torchvision's reference scripts compute them (a sample counts for top-k when its label is among the
// k largest logits; ties broken by the lower class index, like torch.topk on CPU), and a confusion
// matrix (rows = true class, columns = predicted).
#pragma once
#include <cstdint>
#include <vector>
#include "engine/tensor.h"

namespace rtune::finetune {

class ClassMetrics {
 public:
  explicit ClassMetrics(int64_t num_classes);
  // logits: N x C (f32/f64, any device: copied to the host), labels: N int64; loss_sum: sum of the
  // per-sample losses of this batch.
  void add(const Tensor& logits, const Tensor& labels, double loss_sum);
  int64_t count() const { return count_; }
  double loss() const { return count_ ? loss_sum_ / double(count_) : 0.0; }
  double top1() const { return count_ ? double(top1_) / double(count_) : 0.0; }
  double top5() const { return count_ ? double(top5_) / double(count_) : 0.0; }  // top-min(5, C)
  int64_t num_classes() const { return c_; }
  // confusion()[t * C + p]: samples of true class t predicted as p.
  const std::vector<int64_t>& confusion() const { return confusion_; }
  std::vector<double> per_class_accuracy() const;  // NaN-free: classes without samples give 0
  std::vector<int64_t> per_class_count() const;
  // Predictions of the last add() (argmax per sample), for prediction grids.
  const std::vector<int64_t>& last_predictions() const { return last_pred_; }

  // What the figures above are computed from, for checkpoints (last_predictions() is not kept).
  struct Totals {
    int64_t count = 0, top1 = 0, top5 = 0;
    double loss_sum = 0;
    std::vector<int64_t> confusion;  // C x C
  };
  Totals totals() const { return {count_, top1_, top5_, loss_sum_, confusion_}; }
  // Throws when the totals do not fit num_classes (a damaged checkpoint).
  static ClassMetrics from_totals(int64_t num_classes, Totals t);

 private:
  int64_t c_, count_ = 0, top1_ = 0, top5_ = 0;
  double loss_sum_ = 0;
  std::vector<int64_t> confusion_, last_pred_;
};

// Rank of each class by score, descending, ties by lower index (torch.topk / sort stable order).
std::vector<int64_t> topk_indices(const double* scores, int64_t n, int64_t k);

}  // namespace rtune::finetune
