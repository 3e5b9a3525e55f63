#include "finetune/metrics.h"
#include <algorithm>
#include <numeric>

namespace rtune::finetune {

ClassMetrics::ClassMetrics(int64_t num_classes) : c_(num_classes), confusion_(size_t(num_classes * num_classes), 0) {
  RTUNE_CHECK(num_classes > 0, "metrics: num_classes must be > 0, got {}", num_classes);
}

ClassMetrics ClassMetrics::from_totals(int64_t num_classes, Totals t) {
  ClassMetrics m(num_classes);
  RTUNE_CHECK(t.confusion.size() == m.confusion_.size() && t.count >= 0 && t.top1 >= 0 && t.top1 <= t.top5 &&
                  t.top5 <= t.count,
              "metrics: saved totals do not fit {} classes (count {}, top-1 {}, top-5 {}, {} confusion cells)",
              num_classes, t.count, t.top1, t.top5, t.confusion.size());
  m.count_ = t.count, m.top1_ = t.top1, m.top5_ = t.top5, m.loss_sum_ = t.loss_sum;
  m.confusion_ = std::move(t.confusion);
  return m;
}

std::vector<int64_t> topk_indices(const double* scores, int64_t n, int64_t k) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min(k, n);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int64_t a, int64_t b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  });
  idx.resize(size_t(k));
  return idx;
}

void ClassMetrics::add(const Tensor& logits, const Tensor& labels, double loss_sum) {
  RTUNE_CHECK(logits.dim() == 2 && logits.size(1) == c_, "metrics: logits {} do not have {} classes", logits.str(), c_);
  const int64_t n = logits.size(0);
  RTUNE_CHECK(labels.numel() == n, "metrics: {} labels for {} logit rows", labels.numel(), n);
  std::vector<double> s = logits.cpu().to(DType::f64).to_vector<double>();
  std::vector<int64_t> y = labels.cpu().to_vector<int64_t>();
  last_pred_.assign(size_t(n), 0);
  for (int64_t i = 0; i < n; ++i) {
    RTUNE_CHECK(y[size_t(i)] >= 0 && y[size_t(i)] < c_, "metrics: label {} outside [0, {})", y[size_t(i)], c_);
    auto top = topk_indices(s.data() + i * c_, c_, 5);
    top1_ += top[0] == y[size_t(i)];
    top5_ += std::find(top.begin(), top.end(), y[size_t(i)]) != top.end();
    confusion_[size_t(y[size_t(i)] * c_ + top[0])]++;
    last_pred_[size_t(i)] = top[0];
  }
  count_ += n;
  loss_sum_ += loss_sum;
}

std::vector<int64_t> ClassMetrics::per_class_count() const {
  std::vector<int64_t> out(size_t(c_), 0);
  for (int64_t t = 0; t < c_; ++t)
    for (int64_t p = 0; p < c_; ++p) out[size_t(t)] += confusion_[size_t(t * c_ + p)];
  return out;
}

std::vector<double> ClassMetrics::per_class_accuracy() const {
  auto n = per_class_count();
  std::vector<double> out(size_t(c_), 0.0);
  for (int64_t t = 0; t < c_; ++t)
    if (n[size_t(t)]) out[size_t(t)] = double(confusion_[size_t(t * c_ + t)]) / double(n[size_t(t)]);
  return out;
}

}  // namespace rtune::finetune
