// The frozen-feature cache: when every layer below the head (fc) is frozen with BatchNorm in eval mode,
// the pooled features of an image depend only on its pixels, so the epoch that first sees an image keeps
// its features (host memory, the dtype the backbone gives) and later epochs train fc alone on them. With
// deterministic train transforms one view per image is exact: the same per-step losses and weights as the
// uncached run. With random transforms, `--feature-cache N` keeps N views: epoch e trains on the
// augmentations of epoch e mod N (the train loader's LoaderOptions::augment_period), still in epoch e's
// shuffled order, which is what an uncached run with that period computes. The validation set (eval
// transforms, deterministic) keeps one view, filled by the first validation. Never saved in checkpoints: a
// resumed run refills the view it needs in its first epoch (the same features, so the same results).
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>
#include "engine/tensor.h"
#include "finetune/trainer.h"

namespace rtune::finetune {

struct FeatureCachePlan {
  int64_t views = 0;   // 0: off
  size_t bytes = 0;    // what the views will hold
  std::string note;    // "feature cache: on (…)" or "feature cache: off (why)", for the log and the report
};

// Decides from cfg.feature_cache (-1 auto, 0 off, N views), the model's trainable parameters (call it
// after the freeze is applied), cfg.frozen_bn, the train loader's pipeline and options, and a memory
// budget (`budget_bytes`; 0: a quarter of this machine's memory) that the validation set's `val_samples`
// count against too, one view. Automatic mode turns off with a note when it does not
// apply; an explicit N that cannot apply (layers below fc train, frozen BN in train mode, over the
// budget) throws rtune::InvalidArgument naming --feature-cache.
FeatureCachePlan plan_feature_cache(const TrainConfig& cfg, models::ResNet& model, const io::Loader& train,
                                    size_t val_samples, size_t budget_bytes = 0);

// The validation set's features, batch by batch in the (unshuffled) validation loader's order, with
// the samples each batch holds: evaluate() on them equals evaluate() on the images.
struct ValFeatures {
  std::vector<Tensor> features;  // host [n, dim] per batch
  std::vector<std::vector<int64_t>> labels, indices;
  bool complete = false;
  size_t bytes() const;
};

class FeatureCache {
 public:
  FeatureCache(int64_t views, size_t samples, int64_t dim);

  int64_t views() const { return int64_t(views_.size()); }
  int64_t dim() const { return dim_; }
  int64_t view_of(int64_t epoch) const { return epoch % views(); }  // epoch: 0-based
  // Every sample of `view` is stored.
  bool complete(int64_t view) const;
  // Keeps row `row` of `features` (host [B, dim]) as dataset sample `index`'s `view`, with its label.
  // The first store fixes the dtype.
  void store(int64_t view, size_t index, const Tensor& features, int64_t row, int64_t label);
  // requires: complete(view); `rows` a dense host [n, dim] tensor of the stored dtype, n = indices.size().
  // Copies the rows of `indices`, in order, into `rows` and their labels into `labels`.
  void gather(int64_t view, std::span<const size_t> indices, Tensor& rows, std::vector<int64_t>& labels) const;
  DType dtype(int64_t view) const { return views_[size_t(view)].rows.dtype(); }  // requires: a store into `view`
  size_t bytes() const;

 private:
  struct View {
    Tensor rows;                  // [samples, dim], allocated by the first store
    std::vector<int64_t> labels;  // -1: not stored yet
    size_t stored = 0;
  };
  std::vector<View> views_;
  size_t samples_ = 0;
  int64_t dim_ = 0;
};

// A cached step's inputs, in buffers sized once for the batch and reused step after step: no step
// allocates. On a CUDA run the rows are gathered into pinned host memory and uploaded from there
// without the host waiting; two sets alternate, so before call k + 2 the caller must have waited for a
// fence taken after call k (the trainer's finish_step of step k does), and the upload is done with it.
class CachedBatches {
 public:
  CachedBatches(int64_t batch, Device device) : batch_(batch), device_(device) {}
  struct Inputs {
    Tensor features, labels;  // [n, dim] and int64 [n] on the device, n = indices.size()
  };
  // requires: cache.complete(view), indices.size() <= batch. `labels` gets the labels on the host.
  Inputs load(const FeatureCache& cache, int64_t view, std::span<const size_t> indices, std::vector<int64_t>& labels);

 private:
  struct Set {
    Tensor host_rows, host_labels;  // pinned on CUDA
    Tensor rows, labels;            // on the device (the host tensors themselves on the CPU)
  };
  std::array<Set, 2> sets_;
  int next_ = 0;
  int64_t batch_;
  Device device_;
};

}  // namespace rtune::finetune
