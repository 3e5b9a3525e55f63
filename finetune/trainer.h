// The fine-tuning loop, written the way the PyTorch tutorials write it:
//   for epoch: model.train(); for x, y in loader: opt.zero_grad(); loss = criterion(model(x), y);
//              loss.backward(); clip; opt.step(); [batch scheduler.step()]
//              evaluate (no_grad, model.eval()); [epoch scheduler.step() / plateau.step(val_loss)]
// plus freezing (finetune/freeze.h), two LR groups (finetune/optim_config.h), an optional
// unfreeze phase (at epoch E every parameter becomes trainable at --unfreeze-lr with a fresh optimizer
// and a scheduler over the remaining epochs), and exact save/restore of everything the loop depends
// on, so N epochs equal K epochs + resume + N-K epochs bit for bit on the CPU. The validation loss uses
// the training criterion (label smoothing included), as torchvision's reference evaluate(criterion);
// ReduceLROnPlateau steps on it (on the training loss when there is no validation set); "best" is
// the highest validation top-1 (training top-1 without validation), ties keeping the earlier epoch.
#pragma once
#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>
#include "engine/nn/autocast.h"
#include "kernels/ops.h"
#include "engine/sched/scheduler.h"
#include "finetune/data_parallel.h"
#include "finetune/freeze.h"
#include "finetune/metrics.h"
#include "finetune/optim_config.h"
#include "finetune/val_samples.h"
#include "io/formats/checkpoint.h"
#include "io/data/loader.h"

namespace rtune::finetune {

class FeatureCache;
class CachedBatches;
struct ValFeatures;

struct TrainConfig {
  int64_t epochs = 1;
  OptimConfig opt;
  std::string sched;                // make_scheduler spec; "" = constant LR
  double clip_norm = 0;             // clip_grad_norm_ max norm (0 = off)
  double clip_value = 0;            // clip_grad_value_ (0 = off)
  double label_smoothing = 0;
  FreezeSpec freeze;
  FrozenBN frozen_bn = FrozenBN::eval;
  // Data-parallel runs: BatchNorm layers that use batch statistics use those of every rank's batch
  // (torch.nn.SyncBatchNorm; engine/functional.h sync_batch_norm), on CPU and GPU ranks.
  bool sync_bn = false;
  int64_t unfreeze_at = -1;         // frozen for this many epochs, then everything trains; -1 = never
  double unfreeze_lr = 0;           // head LR of the unfrozen phase; 0 = opt.lr / 10
  io::Normalize train_norm, val_norm;
  DType dtype = DType::f32;         // master weights (and the CPU path's compute); f64 for parity tests
  Device device = Device::cpu();
  nn::Precision precision = nn::Precision::fp32;  // CUDA: channels-last in fp32 or bf16 (autocast)
  // Frozen-feature cache (finetune/feature_cache.h): -1 automatic (on when only fc trains, frozen BN
  // is eval and the train transforms are deterministic), 0 off, N: N cached views of random transforms.
  int64_t feature_cache = -1;
  int64_t keep_val_samples = 32;    // validation predictions kept for the report grid (finetune/val_samples.h)
  nlohmann::json to_json() const;
  // Throws rtune::InvalidArgument naming the flag of the first out-of-range or contradictory setting.
  // Called once, where the config is built (TrainArgs::validate() for a run); the Trainer expects a
  // validated config.
  void validate() const;
};

struct StepRecord {   // one optimizer step
  int64_t step = 0, epoch = 0;
  double loss = 0, lr = 0;  // lr: the head LR this step used
  // The LR of every parameter group this step used, in Trainer::lr_groups() order; NaN for a group
  // with no trainable parameter (a frozen stage). Empty when restored from a checkpoint without them.
  std::vector<double> group_lrs = {};
};
struct EpochRecord {
  int64_t epoch = 0;  // 1-based, as printed
  double train_loss = 0, train_top1 = 0, val_loss = 0, val_top1 = 0, val_top5 = 0, lr = 0;
  double seconds = 0, images_per_s = 0;
  // Data-parallel runs: the seconds of the epoch's training spent averaging gradients (the all-reduce,
  // including waiting for the slowest rank); 0 with one rank (and then absent from the JSON).
  double comm_seconds = 0;
  bool has_val = false, best = false;
  int64_t phase = 0;  // 0 = as configured, 1 = unfrozen
  // (group name, LR) of every parameter group at the time `lr` is taken; NaN (JSON null) for a group
  // with no trainable parameter.
  std::vector<std::pair<std::string, double>> group_lrs;
  nlohmann::json to_json() const;
  static EpochRecord from_json(const nlohmann::json& j);
};
struct EvalResult {
  ClassMetrics metrics;
  std::vector<ValPrediction> samples;  // keep_val_samples of them, from every class, mistakes first (val_samples.h)
};
struct Progress {
  int64_t epoch = 0, epochs = 0, batch = 0, batches = 0, images = 0;
  double seconds = 0, loss = 0, lr = 0;
  bool validating = false;
};
struct Hooks {
  std::function<void(const Progress&)> on_batch;
  std::function<void(const EpochRecord&)> on_epoch;  // after validation and the scheduler step
  std::function<void(const std::string&)> log;       // phase changes and notes
};

// Evaluates `model` on every batch of `loader` (no grad, eval mode; restores the previous mode).
// On CUDA it computes in `precision`, channels-last (engine/nn/autocast.h). With `cache` (a frozen
// backbone's, finetune/feature_cache.h): when complete, only fc runs, on its features, and no image is
// read; else the pass keeps every batch's features in it and marks it complete.
EvalResult evaluate(models::ResNet& model, io::Loader& loader, const io::Normalize& norm, int64_t num_classes,
                    DType dtype, Device device, nn::Precision precision, double label_smoothing = 0, int64_t keep_samples = 0,
                    const std::function<void(const Progress&)>& on_batch = {}, ValFeatures* cache = nullptr);

class Trainer {
 public:
  // requires: model, loaders and their datasets outlive the trainer; model already on cfg.device and
  // in cfg.dtype with its head sized for the data. `val` may be null (no validation: best = last).
  // With a `comm` of N ranks (finetune/data_parallel.h) the loaders hold this rank's shards (the train
  // one padded, LoaderOptions::shard_rank) and every rank runs the same steps: gradients, the logged
  // losses and the epoch's metrics are those of all ranks together.
  Trainer(models::ResNet& model, io::Loader& train, io::Loader* val, int64_t num_classes, TrainConfig cfg,
          dist::Comm& comm = dist::single_process());
  ~Trainer();

  // Runs the remaining epochs: from epoch() to cfg.epochs.
  void fit(const Hooks& hooks = {});
  EpochRecord run_epoch(const Hooks& hooks = {});

  int64_t epoch() const { return epoch_; }  // completed epochs
  const std::vector<EpochRecord>& history() const { return history_; }
  const std::vector<StepRecord>& steps() const { return steps_; }
  const EvalResult* last_eval() const { return last_eval_.get(); }
  // The validation of best_epoch(): the weights saved as best.safetensors. Null without validation.
  const EvalResult* best_eval() const { return best_eval_.get(); }
  // The parameter groups' names, in the optimizer's order (the same in every phase: finetune/optim_config.h).
  const std::vector<std::string>& lr_groups() const { return lr_groups_; }
  double best_top1() const { return best_top1_; }
  int64_t best_epoch() const { return best_epoch_; }
  const TrainConfig& config() const { return cfg_; }
  optim::Optimizer& optimizer() { return *opt_; }
  double current_lr() const;  // head LR of the next step
  const FreezeResult& freeze_result() const { return freeze_; }
  // "feature cache: on (…)" or "feature cache: off (why)": what the run decided, for the log and the report.
  // How the ranks' gradients are averaged, for the log ("MPI ..., one all-reduce per step", "NCCL ...").
  std::string gradient_sync_note() const { return grads_.describe(); }
  const std::string& feature_cache_note() const { return fcache_note_; }
  // The cache while it is in use (until the unfreeze phase drops it), else null.
  const FeatureCache* feature_cache() const { return fcache_.get(); }
  const ValFeatures* val_features() const { return val_features_.get(); }

  // Everything fit() depends on: model state_dict ("model.*"), optimizer buffers ("optim.*") and a
  // JSON with epoch, phase, optimizer scalars, scheduler state, best, history and per-step records
  // (group LRs included), and the last and the best validation (confusion, kept predictions).
  io::Checkpoint checkpoint() const;
  // Restores checkpoint(); throws when it came from another model shape or optimizer kind.
  void restore(const io::Checkpoint& ck);

 private:
  void start_phase(int64_t phase);
  void apply_sched_lrs();
  std::vector<double> group_lrs() const;  // NaN for a group without parameters
  struct PendingStep;
  // Uploads, forward, backward, update; results still in flight. With fill_view >= 0 the batch's
  // features also travel to the host, to be kept for the dataset indices `keys` (the epoch order's slice).
  PendingStep queue_step(const io::Batch& b, int64_t fill_view = -1, std::span<const size_t> keys = {});
  // The same step on cached features: fc alone, for the dataset indices `keys`.
  PendingStep queue_cached_step(int64_t view, std::span<const size_t> keys);
  // From the logits on: the loss, backward, clipping, the update, the downloads, the scheduler.
  PendingStep queue_head(Tensor logits, const Tensor& y, const std::vector<int64_t>& labels);
  double finish_step(const PendingStep& s, ClassMetrics& m);  // waits for them; returns the loss

  kernels::Fence upload_done_;
  // Pinned on CUDA, reused step after step (features_host_: the features that fill the cache).
  std::array<Tensor, 2> loss_host_, logits_host_, features_host_, ranks_loss_host_;
  int s_parity_ = 0;
  models::ResNet& model_;
  io::Loader& train_;
  io::Loader* val_;
  dist::Comm& comm_;
  GradientAverager grads_;
  int64_t num_classes_;
  TrainConfig cfg_;
  int64_t epoch_ = 0, global_step_ = 0, phase_ = -1;
  std::unique_ptr<optim::Optimizer> opt_;
  std::unique_ptr<sched::Scheduler> sched_;
  std::vector<Tensor*> trainable_;
  std::unique_ptr<FeatureCache> fcache_;
  std::unique_ptr<CachedBatches> cached_batches_;  // the cached steps' inputs
  std::vector<int64_t> cached_labels_;
  std::unique_ptr<ValFeatures> val_features_;  // the validation batches' features while fcache_ is in use
  std::string fcache_note_;
  FreezeResult freeze_;
  std::vector<EpochRecord> history_;
  std::vector<StepRecord> steps_;
  std::unique_ptr<EvalResult> last_eval_, best_eval_;
  std::vector<std::string> lr_groups_;
  double best_top1_ = -1;
  int64_t best_epoch_ = 0;
};

}  // namespace rtune::finetune
