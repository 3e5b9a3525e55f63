#include "finetune/feature_cache.h"
#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include "engine/error.h"
#include "finetune/batch.h"
#include "io/data/cache.h"
#include "kernels/ops.h"

namespace rtune::finetune {

namespace {
std::string mib(size_t bytes) { return fmt::format("{:.1f} MiB", double(bytes) / double(1 << 20)); }

// The first parameter below fc that trains, or "" when only fc does.
std::string trained_below_head(models::ResNet& model) {
  for (auto& [name, t] : model.named_parameters())
    if (name.rfind("fc.", 0) != 0 && t->requires_grad()) return name;
  return "";
}
}  // namespace

FeatureCachePlan plan_feature_cache(const TrainConfig& cfg, models::ResNet& model, const io::Loader& train,
                                    size_t val_samples, size_t budget_bytes) {
  FeatureCachePlan p;
  const int64_t asked = cfg.feature_cache;
  auto off = [&](const std::string& why) {
    p.note = "feature cache: off (" + why + ")";
    return p;
  };
  // An explicit N that cannot apply is a refusal: the user asked for something this run would not do.
  auto refuse_or_off = [&](const std::string& why) {
    if (asked > 0) invalid_argument("--feature-cache {}: {}", asked, why);
    return off(why);
  };
  if (asked == 0) return off("--feature-cache 0");
  if (std::string name = trained_below_head(model); !name.empty())
    return refuse_or_off(fmt::format("layers below fc train: {} with --freeze {}", name, cfg.freeze.str()));
  if (cfg.frozen_bn != FrozenBN::eval)
    return refuse_or_off("--frozen-bn train updates the BatchNorm statistics every step, so the features change");
  if (train.options().skip_bad) return refuse_or_off("the train loader leaves bad images out (skip_bad)");
  const bool deterministic = train.pipeline().deterministic();
  if (!deterministic && asked < 0)
    return off("the train transforms are random; --feature-cache N trains on N cached augmented views per image");
  p.views = deterministic ? 1 : asked;
  // The unfrozen phase drops the cache: it must leave some epoch that reads it.
  if (cfg.unfreeze_at >= 0 && cfg.unfreeze_at <= p.views) {
    p.views = 0;
    return refuse_or_off(fmt::format("--unfreeze-at {} comes before any epoch could train from the cache", cfg.unfreeze_at));
  }
  const size_t samples = train.dataset().samples.size();
  p.bytes = (size_t(p.views) * samples + val_samples) * size_t(model.feature_dim()) * dtype_size(cfg.dtype);
  const size_t ram = io::physical_memory_bytes();
  const size_t budget = budget_bytes > 0 ? budget_bytes : ram > 0 ? ram / 4 : size_t(4) << 30;
  if (p.bytes > budget) {
    const size_t bytes = p.bytes;
    p.views = 0, p.bytes = 0;
    return refuse_or_off(fmt::format("{} views x {} images (+ {} validation images) x {} features need {}, over the "
                                     "budget of {}{}; lower --feature-cache or turn it off with "
                                     "--feature-cache 0", deterministic ? 1 : asked, samples, val_samples,
                                     model.feature_dim(), mib(bytes), mib(budget),
                                     budget_bytes > 0 ? "" : " (a quarter of memory)"));
  }
  const std::string size = fmt::format("{} train{} images x {} features, {}", samples,
                                       val_samples > 0 ? fmt::format(" + {} validation", val_samples) : "",
                                       model.feature_dim(), mib(p.bytes));
  if (deterministic)
    p.note = fmt::format("feature cache: on (deterministic train transforms; {}; the first epoch fills it, later "
                         "epochs{} run only fc{}{})", size, cfg.unfreeze_at >= 0 ? " until --unfreeze-at" : "",
                         val_samples > 0 ? ", in training and validation" : "",
                         asked > 1 ? fmt::format("; one view, not {}: every view would be the same", asked) : "");
  else
    p.note = fmt::format("feature cache: on ({} cached augmented views per image, cycled: epoch e trains on the "
                         "augmentations of epoch e mod {}; {}; epochs 1-{} fill it, later epochs{} train only fc{})",
                         p.views, p.views, size, p.views, cfg.unfreeze_at >= 0 ? " until --unfreeze-at" : "",
                         val_samples > 0 ? "; validation runs only fc from epoch 2" : "");
  return p;
}

FeatureCache::FeatureCache(int64_t views, size_t samples, int64_t dim)
    : views_(size_t(views)), samples_(samples), dim_(dim) {
  RTUNE_CHECK(views >= 1 && dim >= 1, "feature cache: {} views of {} features", views, dim);
  for (View& v : views_) v.labels.assign(samples, -1);
}

bool FeatureCache::complete(int64_t view) const { return views_[size_t(view)].stored == samples_; }

void FeatureCache::store(int64_t view, size_t index, const Tensor& features, int64_t row, int64_t label) {
  View& v = views_[size_t(view)];
  RTUNE_CHECK(index < samples_ && features.dim() == 2 && features.size(1) == dim_ && features.is_contiguous() &&
                  !features.is_cuda(), "feature cache: bad store of sample {} ({})", index, features.str());
  if (!v.rows.defined()) v.rows = empty({int64_t(samples_), dim_}, {features.dtype()});
  RTUNE_CHECK(v.rows.dtype() == features.dtype(), "feature cache: features came as {}, then {}",
              dtype_name(v.rows.dtype()), dtype_name(features.dtype()));
  const size_t row_bytes = size_t(dim_) * dtype_size(features.dtype());
  std::memcpy(static_cast<std::byte*>(v.rows.raw_data()) + index * row_bytes,
              static_cast<const std::byte*>(features.raw_data()) + size_t(row) * row_bytes, row_bytes);
  if (v.labels[index] < 0) ++v.stored;
  v.labels[index] = label;
}

void FeatureCache::gather(int64_t view, std::span<const size_t> indices, Tensor& rows,
                          std::vector<int64_t>& labels) const {
  const View& v = views_[size_t(view)];
  RTUNE_CHECK(v.stored == samples_, "feature cache: view {} holds {} of {} samples", view, v.stored, samples_);
  const Shape want{int64_t(indices.size()), dim_};
  RTUNE_CHECK(rows.shape() == want && rows.dtype() == v.rows.dtype() &&
                  rows.is_contiguous() && !rows.is_cuda(), "feature cache: cannot gather into {}", rows.str());
  const size_t row_bytes = size_t(dim_) * dtype_size(v.rows.dtype());
  labels.resize(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    std::memcpy(static_cast<std::byte*>(rows.raw_data()) + i * row_bytes,
                static_cast<const std::byte*>(v.rows.raw_data()) + indices[i] * row_bytes, row_bytes);
    labels[i] = v.labels[indices[i]];
  }
}

CachedBatches::Inputs CachedBatches::load(const FeatureCache& cache, int64_t view, std::span<const size_t> indices,
                                          std::vector<int64_t>& labels) {
  const int64_t n = int64_t(indices.size());
  RTUNE_CHECK(n <= batch_, "feature cache: a batch of {} for buffers of {}", n, batch_);
  Set& s = sets_[size_t(next_)];
  next_ ^= 1;
  if (!s.host_rows.defined()) {  // the first step: sized for a full batch; a short last batch uses the first rows
    const Shape shape{batch_, cache.dim()};
    s.host_rows = host_buffer(shape, cache.dtype(view), device_);
    s.host_labels = host_buffer({batch_}, DType::i64, device_);
    s.rows = device_.is_cuda() ? empty(shape, {cache.dtype(view), device_}) : s.host_rows;
    s.labels = device_.is_cuda() ? empty({batch_}, {DType::i64, device_}) : s.host_labels;
  }
  Tensor host_rows = s.host_rows.narrow(0, 0, n), host_labels = s.host_labels.narrow(0, 0, n);
  cache.gather(view, indices, host_rows, labels);
  std::memcpy(host_labels.raw_data(), labels.data(), size_t(n) * sizeof(int64_t));
  Inputs in{s.rows.narrow(0, 0, n), s.labels.narrow(0, 0, n)};
  if (device_.is_cuda()) {  // queued behind the previous step's compute, which last read these device tensors
    kernels::upload(host_rows, in.features);
    kernels::upload(host_labels, in.labels);
  }
  return in;
}

size_t ValFeatures::bytes() const {
  size_t n = 0;
  for (const Tensor& f : features) n += size_t(f.numel()) * dtype_size(f.dtype());
  return n;
}

size_t FeatureCache::bytes() const {
  size_t n = 0;
  for (const View& v : views_)
    if (v.rows.defined()) n += size_t(v.rows.numel()) * dtype_size(v.rows.dtype());
  return n;
}

}  // namespace rtune::finetune
