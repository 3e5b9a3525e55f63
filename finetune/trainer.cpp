#include "finetune/trainer.h"
#include <algorithm>
#include <cmath>
#include <optional>
#include "engine/autograd.h"
#include "engine/functional.h"
#include "engine/sched/spec.h"
#include "finetune/batch.h"
#include "finetune/feature_cache.h"
#include "kernels/ops.h"

namespace rtune::finetune {

using Clock = std::chrono::steady_clock;

namespace {
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

nlohmann::json norm_json(const io::Normalize& n) {
  return {{"mean", {n.mean[0], n.mean[1], n.mean[2]}}, {"std", {n.std[0], n.std[1], n.std[2]}}};
}

// A frozen group's LR is NaN in memory and null in JSON (dump() would write null anyway; this says so).
nlohmann::json lr_json(double lr) { return std::isnan(lr) ? nlohmann::json() : nlohmann::json(lr); }
double lr_from_json(const nlohmann::json& j) { return j.is_null() ? NAN : j.get<double>(); }

// An evaluation as checkpoint state: its totals in JSON, its confusion matrix as a tensor named `tensor`.
nlohmann::json eval_state(const EvalResult& e, int64_t num_classes, const std::string& tensor, io::Checkpoint& ck) {
  const ClassMetrics::Totals t = e.metrics.totals();
  nlohmann::json samples = nlohmann::json::array();
  for (const auto& v : e.samples) samples.push_back({v.index, v.label, v.pred, v.prob});
  ck.tensors.emplace_back(tensor, from_vector_i64(t.confusion, {num_classes, num_classes}));
  return {{"count", t.count}, {"top1", t.top1}, {"top5", t.top5}, {"loss_sum", t.loss_sum}, {"samples", samples}};
}

std::unique_ptr<EvalResult> eval_from_state(const nlohmann::json& e, int64_t num_classes, const std::string& tensor,
                                            const io::Checkpoint& ck) {
  const Tensor* confusion = ck.find(tensor);
  RTUNE_CHECK(confusion && confusion->dtype() == DType::i64, "checkpoint has an evaluation but no int64 '{}'", tensor);
  ClassMetrics::Totals t{e.at("count").get<int64_t>(), e.at("top1").get<int64_t>(), e.at("top5").get<int64_t>(),
                         e.at("loss_sum").get<double>(), confusion->cpu().to_vector<int64_t>()};
  auto r = std::make_unique<EvalResult>(EvalResult{ClassMetrics::from_totals(num_classes, std::move(t)), {}});
  for (const auto& v : e.at("samples"))
    r->samples.push_back({v.at(0).get<int64_t>(), v.at(1).get<int64_t>(), v.at(2).get<int64_t>(), v.at(3).get<double>()});
  return r;
}
}  // namespace

nlohmann::json TrainConfig::to_json() const {
  return {{"epochs", epochs}, {"optimizer", opt.to_json()}, {"sched", sched}, {"clip_norm", clip_norm},
          {"clip_value", clip_value}, {"label_smoothing", label_smoothing}, {"freeze", freeze.str()},
          {"frozen_bn", std::string(frozen_bn_name(frozen_bn))}, {"unfreeze_at", unfreeze_at},
          {"unfreeze_lr", unfreeze_lr}, {"train_norm", norm_json(train_norm)}, {"val_norm", norm_json(val_norm)},
          {"dtype", std::string(dtype_name(dtype))}, {"device", device.str()},
          {"precision", nn::precision_name(precision)}, {"feature_cache", feature_cache}, {"sync_bn", sync_bn}};
}

nlohmann::json EpochRecord::to_json() const {
  nlohmann::json j{{"epoch", epoch}, {"train_loss", train_loss}, {"train_top1", train_top1}, {"lr", lr},
                   {"seconds", seconds}, {"images_per_s", images_per_s}, {"best", best}, {"phase", phase}};
  if (comm_seconds > 0) j["comm_seconds"] = comm_seconds;
  if (!group_lrs.empty()) {  // a list, not an object: it keeps the optimizer's group order
    j["group_lrs"] = nlohmann::json::array();
    for (const auto& [name, lr] : group_lrs) j["group_lrs"].push_back({{"group", name}, {"lr", lr_json(lr)}});
  }
  if (has_val) {
    j["val_loss"] = val_loss;
    j["val_top1"] = val_top1;
    j["val_top5"] = val_top5;
  }
  return j;
}

EpochRecord EpochRecord::from_json(const nlohmann::json& j) {
  EpochRecord r;
  r.epoch = j.at("epoch").get<int64_t>();
  r.train_loss = j.at("train_loss").get<double>();
  r.train_top1 = j.at("train_top1").get<double>();
  r.lr = j.at("lr").get<double>();
  r.seconds = j.at("seconds").get<double>();
  r.images_per_s = j.at("images_per_s").get<double>();
  r.comm_seconds = j.value("comm_seconds", 0.0);
  r.best = j.at("best").get<bool>();
  r.phase = j.at("phase").get<int64_t>();
  if (j.contains("group_lrs"))  // absent from records written before group LRs were logged
    for (const auto& g : j.at("group_lrs")) r.group_lrs.emplace_back(g.at("group").get<std::string>(), lr_from_json(g.at("lr")));
  r.has_val = j.contains("val_top1");
  if (r.has_val) {
    r.val_loss = j.at("val_loss").get<double>();
    r.val_top1 = j.at("val_top1").get<double>();
    r.val_top5 = j.at("val_top5").get<double>();
  }
  return r;
}

EvalResult evaluate(models::ResNet& model, io::Loader& loader, const io::Normalize& norm, int64_t num_classes,
                    DType dtype, Device device, nn::Precision precision, double label_smoothing,
                    int64_t keep_samples, const std::function<void(const Progress&)>& on_batch, ValFeatures* cache) {
  NoGradGuard no_grad;
  nn::Autocast autocast(precision, device);
  const bool was_training = model.is_training();
  model.eval();
  EvalResult r{ClassMetrics(num_classes), {}};
  ValSampleSelector selector(num_classes, keep_samples);
  Progress p;
  p.validating = true;
  p.batches = int64_t(loader.batches_per_epoch());
  auto t0 = Clock::now();
  // One batch's logits (master dtype) into the metrics and the kept predictions.
  auto add = [&](const Tensor& logits, const Tensor& y, const std::vector<int64_t>& labels,
                 const std::vector<int64_t>& indices) {
    const int64_t n = int64_t(labels.size());
    Tensor loss = cross_entropy(logits, y, label_smoothing, Reduction::sum);
    kernels::fence(device).wait();  // raises what the device found (an out-of-range label); eval syncs anyway
    r.metrics.add(logits, y, loss.cpu().to(DType::f64).item<double>());
    const auto& pred = r.metrics.last_predictions();
    bool wanted = false;
    for (int64_t i = 0; i < n && !wanted; ++i) wanted = selector.wants(labels[size_t(i)], labels[size_t(i)] == pred[size_t(i)]);
    if (wanted) {
      Tensor probs = softmax(logits).cpu().to(DType::f64);
      const auto pv = probs.to_vector<double>();
      for (int64_t i = 0; i < n; ++i)
        selector.add({indices[size_t(i)], labels[size_t(i)], pred[size_t(i)], pv[size_t(i * num_classes + pred[size_t(i)])]});
    }
    p.batch++;
    p.images += n;
    p.seconds = seconds_since(t0);
    if (on_batch) on_batch(p);
  };
  if (cache && cache->complete) {  // the head alone on the kept features: no image is read
    for (size_t k = 0; k < cache->features.size(); ++k) {
      Tensor f = device.is_cuda() ? cache->features[k].to(device) : cache->features[k];
      Tensor y = from_vector_i64(cache->labels[k], {int64_t(cache->labels[k].size())});
      if (device.is_cuda()) y = y.to(device);
      add(cast(model.fc->forward(f), dtype), y, cache->labels[k], cache->indices[k]);
    }
  } else {
    loader.start_epoch(0);  // a validation loader does not shuffle: every epoch sees the same order
    io::Batch b;
    Tensor landing;  // CUDA, filling the cache: the features' pinned landing place, reused batch after batch
    while (loader.next(b)) {
      Tensor x = input_tensor(b, norm, dtype, device, precision);
      Tensor y = labels_to_tensor(b, device);
      Tensor features = model.features(x).detach().contiguous();  // model.forward(x) is fc(features(x))
      Tensor host = features;
      if (cache && device.is_cuda()) {  // queued, not waited for: add() waits for the device anyway
        if (!landing.defined() || landing.size(0) < features.size(0) || landing.dtype() != features.dtype())
          landing = host_buffer(features.shape(), features.dtype(), device);
        host = landing.narrow(0, 0, features.size(0));
        kernels::download(features, host);
      }
      add(cast(model.fc->forward(features), dtype), y, b.labels, b.indices);  // the loss and softmax in the master dtype
      if (cache) {
        cache->features.push_back(device.is_cuda() ? host.clone() : host);  // kept on the heap, not pinned
        cache->labels.push_back(b.labels);
        cache->indices.push_back(b.indices);
      }
    }
    if (cache) cache->complete = true;
  }
  model.train(was_training);
  r.samples = selector.selection();
  return r;
}

void TrainConfig::validate() const {
  if (epochs < 1) invalid_argument("--epochs {}: must be >= 1", epochs);
  if (unfreeze_at >= 0 && !(unfreeze_at >= 1 && unfreeze_at < epochs))
    invalid_argument("--unfreeze-at {}: must be in [1, epochs) = [1, {})", unfreeze_at, epochs);
  if (unfreeze_at >= 0 && freeze.kind == FreezeSpec::Kind::none)
    invalid_argument("--unfreeze-at needs a --freeze spec (nothing is frozen)");
  if (!(clip_norm >= 0)) invalid_argument("--clip-norm {}: must be >= 0", clip_norm);
  if (!(clip_value >= 0)) invalid_argument("--clip-value {}: must be >= 0", clip_value);
  if (!(label_smoothing >= 0 && label_smoothing < 1))
    invalid_argument("--label-smoothing {}: must be in [0, 1)", label_smoothing);
  if (!(unfreeze_lr >= 0)) invalid_argument("--unfreeze-lr {}: must be >= 0", unfreeze_lr);
  if (feature_cache < -1) invalid_argument("--feature-cache {}: must be >= 0 (0 = off)", feature_cache);
  if (feature_cache > 0 && freeze.kind == FreezeSpec::Kind::none)
    invalid_argument("--feature-cache {} needs a frozen backbone (--freeze backbone): nothing is frozen", feature_cache);
  if (feature_cache > 0 && frozen_bn != FrozenBN::eval)
    invalid_argument("--feature-cache {} needs --frozen-bn eval: BatchNorm in train mode changes the features every step",
                     feature_cache);
  finetune::validate(opt);
}

Trainer::Trainer(models::ResNet& model, io::Loader& train, io::Loader* val, int64_t num_classes, TrainConfig cfg,
                 dist::Comm& comm)
    : model_(model), train_(train), val_(val), comm_(comm), grads_(comm, cfg.dtype, cfg.device), num_classes_(num_classes),
      cfg_(std::move(cfg)) {
  if (cfg_.sync_bn)
    for (auto& [name, m] : model_.named_modules())
      if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(m)) bn->sync_ranks = [&c = comm_](std::span<double> d) { c.allreduce_sum(d); };
  RTUNE_CHECK(cfg_.precision == nn::Precision::fp32 || (cfg_.dtype == DType::f32 && kernels::supports_bf16(cfg_.device)),
              "train: bf16 mixed precision needs fp32 master weights on a device with bf16 (a CUDA GPU of compute "
              "capability 8.0+, or a CPU with AVX512_BF16/AMX on oneDNN), not {} on {}",
              dtype_name(cfg_.dtype), cfg_.device.str());
  RTUNE_CHECK(model_.config().num_classes == num_classes, "train: the model has {} outputs but the data {} classes",
              model_.config().num_classes, num_classes);
  start_phase(0);
  FeatureCachePlan plan = plan_feature_cache(cfg_, model_, train_, val_ ? val_->dataset().samples.size() : 0);
  if (comm_.size() > 1 && (plan.views > 0 || cfg_.feature_cache > 0))  // a rank's shard changes every epoch
    plan = {0, 0, fmt::format("feature cache: off (a data-parallel run: each of the {} ranks reads other images "
                              "every epoch)", comm_.size())};
  fcache_note_ = plan.note;
  if (plan.views > 0) {
    fcache_ = std::make_unique<FeatureCache>(plan.views, train_.dataset().samples.size(), model_.feature_dim());
    cached_batches_ = std::make_unique<CachedBatches>(train_.options().batch_size, cfg_.device);
    if (val_) val_features_ = std::make_unique<ValFeatures>();  // eval transforms: one view, kept by the first validation
    // Random transforms: every epoch that runs the backbone makes the view it would read from the cache.
    if (!train_.pipeline().deterministic()) train_.set_augment_period(uint64_t(plan.views));
  }
}

Trainer::~Trainer() = default;

void Trainer::start_phase(int64_t phase) {
  phase_ = phase;
  if (phase == 1 && fcache_) {  // the backbone trains from now on: its features change every step
    fcache_.reset();
    cached_batches_.reset();
    val_features_.reset();
    if (train_.options().augment_period > 0) train_.set_augment_period(0);  // fresh augmentations again
  }
  const FreezeSpec spec = phase == 0 ? cfg_.freeze : FreezeSpec{};
  freeze_ = apply_freeze(model_, spec, cfg_.frozen_bn);
  RTUNE_CHECK(freeze_.trainable_params > 0, "train: --freeze '{}' leaves nothing to train", spec.str());
  const double lr = phase == 0 ? cfg_.opt.lr : (cfg_.unfreeze_lr > 0 ? cfg_.unfreeze_lr : cfg_.opt.lr / 10);
  auto groups = make_param_groups(model_, cfg_.opt, lr);
  trainable_.clear();
  for (auto& g : groups) trainable_.insert(trainable_.end(), g.params.begin(), g.params.end());
  opt_ = make_optimizer(cfg_.opt, std::move(groups));
  grads_.set_params(trainable_);
  lr_groups_.clear();
  for (const auto& g : opt_->groups()) lr_groups_.push_back(g.name);
  opt_->reserve_state();  // before the first forward: no device allocation after step 1
  sched_.reset();
  if (!cfg_.sched.empty()) {
    std::vector<double> base;
    for (auto& g : opt_->groups()) base.push_back(g.lr);
    // A phase's schedule spans the epochs it runs for (the unfreeze phase restarts it).
    const int64_t phase_epochs = cfg_.unfreeze_at < 0 ? cfg_.epochs
                                 : phase == 0       ? cfg_.unfreeze_at
                                                    : cfg_.epochs - cfg_.unfreeze_at;
    sched_ = sched::make_scheduler(cfg_.sched, base, {phase_epochs, int64_t(train_.batches_per_epoch())});
    apply_sched_lrs();
  }
}

void Trainer::apply_sched_lrs() {
  auto& gs = opt_->groups();
  for (size_t g = 0; g < gs.size(); ++g) {
    gs[g].lr = sched_->lrs()[g];
    if (!sched_->momentum().empty()) gs[g].momentum = sched_->momentum()[g];
  }
}

double Trainer::current_lr() const { return opt_->groups().back().lr; }

std::vector<double> Trainer::group_lrs() const {
  std::vector<double> out;
  for (const auto& g : opt_->groups()) out.push_back(g.params.empty() ? NAN : g.lr);
  return out;
}

// The step's loss and logits travel to the host behind its compute; finish_step() reads them one
// step later, so the host queues step k+1 while the device still runs step k.
struct Trainer::PendingStep {
  Tensor loss, logits;  // host copies, valid once `ready` is reached
  kernels::Fence ready;
  Tensor labels;        // host
  int64_t size = 0, step = 0, epoch = 0;
  double lr = 0;
  Tensor ranks_loss;         // N ranks: the mean of their losses (what the step logs), host; undefined with one
  uint64_t comm_mark = 0;    // GPU ranks: the collectives to wait for (bounded) before reading ranks_loss
  std::vector<double> group_lrs;
  // Filling the feature cache: the batch's features (host), for dataset indices `keys` of view `fill_view`.
  Tensor features;
  int64_t fill_view = -1;
  std::vector<size_t> keys;
  std::vector<int64_t> label_values;
};

Trainer::PendingStep Trainer::queue_step(const io::Batch& b, int64_t fill_view, std::span<const size_t> keys) {
  Tensor x = input_tensor(b, cfg_.train_norm, cfg_.dtype, cfg_.device, cfg_.precision);
  Tensor y = labels_to_tensor(b, cfg_.device);
  upload_done_ = kernels::fence(cfg_.device);  // b's (pinned) bytes are free once the device gets here
  opt_->zero_grad();
  auto [features, logits] = train_forward(model_, x, freeze_, cfg_.precision, cfg_.device);
  Tensor host_features;
  if (fill_view >= 0) {
    RTUNE_CHECK(keys.size() == size_t(b.size), "train: a batch of {} images for {} places of the epoch's order", b.size,
                keys.size());
    // queue_head's parity: finish_step reads step k's buffer before step k + 2 refills it.
    Tensor& fb = features_host_[size_t(s_parity_)];
    if (!fb.defined() || fb.size(0) < features.size(0) || fb.dtype() != features.dtype())
      fb = host_buffer(features.shape(), features.dtype(), cfg_.device);  // a short last batch uses the first rows
    host_features = fb.narrow(0, 0, features.size(0));
    kernels::download(features.detach(), host_features);  // ready with the step's loss (queue_head's fence)
  }
  PendingStep s = queue_head(std::move(logits), y, b.labels);
  if (fill_view >= 0) {
    s.features = host_features;
    s.fill_view = fill_view;
    s.keys.assign(keys.begin(), keys.end());
    s.label_values = b.labels;
  }
  return s;
}

Trainer::PendingStep Trainer::queue_cached_step(int64_t view, std::span<const size_t> keys) {
  // The buffers' contract holds: run_epoch finishes step k before it queues step k + 2.
  CachedBatches::Inputs in = cached_batches_->load(*fcache_, view, keys, cached_labels_);
  opt_->zero_grad();
  Tensor logits;
  {
    nn::Autocast autocast(cfg_.precision, cfg_.device);
    logits = model_.fc->forward(in.features);
  }
  return queue_head(std::move(logits), in.labels, cached_labels_);
}

Trainer::PendingStep Trainer::queue_head(Tensor logits, const Tensor& y, const std::vector<int64_t>& labels) {
  logits = cast(logits, cfg_.dtype);  // the loss in the master dtype (fp32 under bf16)
  Tensor loss = cross_entropy(logits, y, cfg_.label_smoothing);
  {
    LeafGradHook buckets(grads_.on_gradient());  // N ranks: the buckets' all-reduces start during the backward
    loss.backward();
  }
  PendingStep s;
  if (comm_.size() > 1) {
    // N ranks: the mean gradient of all their samples, before clipping (so the norm is the global one).
    GradientAverager::Averaged avg = grads_.average(loss);
    Tensor& rb = ranks_loss_host_[size_t(s_parity_)];
    if (!rb.defined() || rb.dtype() != avg.loss.dtype()) rb = host_buffer({}, avg.loss.dtype(), cfg_.device);
    kernels::download(avg.loss, rb);
    s.ranks_loss = rb;
    s.comm_mark = avg.mark;
  }
  if (cfg_.clip_norm > 0) optim::clip_grad_norm(trainable_, cfg_.clip_norm);
  if (cfg_.clip_value > 0) optim::clip_grad_value(trainable_, cfg_.clip_value);
  s.lr = current_lr();
  s.group_lrs = group_lrs();
  opt_->step();
  // Two alternating sets of host buffers: step k's are read by finish_step before step k+2 reuses them.
  Tensor& lb = loss_host_[size_t(s_parity_)];
  Tensor& gb = logits_host_[size_t(s_parity_)];
  s_parity_ ^= 1;
  if (!lb.defined() || lb.dtype() != loss.dtype()) lb = host_buffer({}, loss.dtype(), cfg_.device);
  if (!gb.defined() || gb.size(0) < logits.size(0) || gb.size(1) != logits.size(1) || gb.dtype() != logits.dtype())
    gb = host_buffer(logits.shape(), logits.dtype(), cfg_.device);  // a short last batch uses the first rows
  s.loss = lb;
  s.logits = gb.narrow(0, 0, logits.size(0));
  kernels::download(loss, s.loss);
  kernels::download(logits.detach(), s.logits);
  s.ready = kernels::fence(cfg_.device);
  s.labels = from_vector_i64(labels, {int64_t(labels.size())});
  s.size = int64_t(labels.size());
  s.step = global_step_++;
  s.epoch = epoch_ + 1;
  if (sched_ && sched_->step_unit() == sched::StepUnit::batch) {
    sched_->step();
    apply_sched_lrs();
  }
  return s;
}

double Trainer::finish_step(const PendingStep& s, ClassMetrics& m) {
  if (s.ranks_loss.defined()) grads_.wait_bounded(s.comm_mark);  // a dead peer ends the job, never hangs it
  s.ready.wait();
  const double l = s.loss.to(DType::f64).item<double>();
  m.add(s.logits, s.labels, l * double(s.size));  // this rank's share; summed over the ranks per epoch
  if (s.fill_view >= 0 && fcache_)
    for (size_t i = 0; i < s.keys.size(); ++i) fcache_->store(s.fill_view, s.keys[i], s.features, int64_t(i), s.label_values[i]);
  const double logged = s.ranks_loss.defined() ? s.ranks_loss.to(DType::f64).item<double>() : l;
  steps_.push_back({s.step, s.epoch, logged, s.lr, s.group_lrs});
  return logged;
}

EpochRecord Trainer::run_epoch(const Hooks& hooks) {
  RTUNE_CHECK(epoch_ < cfg_.epochs, "train: all {} epochs are done", cfg_.epochs);
  if (cfg_.unfreeze_at >= 0 && epoch_ >= cfg_.unfreeze_at && phase_ == 0) {
    const bool had_cache = fcache_ != nullptr;
    start_phase(1);
    if (hooks.log)
      hooks.log(fmt::format("epoch {}: unfreezing every layer, head LR {:g} ({} trainable parameters){}", epoch_ + 1,
                            current_lr(), freeze_.trainable_params, had_cache ? "; feature cache dropped" : ""));
  }
  auto t0 = Clock::now();
  model_.train();
  // The feature cache's view for this epoch: read when complete (the loader stays idle), else filled.
  const int64_t view = fcache_ ? fcache_->view_of(epoch_) : -1;
  const bool from_cache = view >= 0 && fcache_->complete(view);
  // The epoch's order (the loader's): batch k holds its entries [k * batch, (k + 1) * batch).
  std::vector<size_t> order;
  if (view >= 0) order = train_.epoch_order(uint64_t(epoch_));
  const size_t bs = size_t(train_.options().batch_size);
  auto keys = [&](size_t k) {
    return std::span<const size_t>(order).subspan(k * bs, std::min(bs, order.size() - k * bs));
  };
  if (!from_cache) train_.start_epoch(uint64_t(epoch_));
  ClassMetrics tm(num_classes_);
  io::Batch b;
  Progress p{epoch_ + 1, cfg_.epochs, 0, int64_t(train_.batches_per_epoch()), 0, 0, 0, 0, false};
  std::optional<PendingStep> pending;
  auto finish = [&] {  // the previous step's loss and metrics, and the progress report
    p.lr = pending->lr;
    p.loss = finish_step(*pending, tm);
    p.batch++;
    p.images += pending->size;
    p.seconds = seconds_since(t0);
    RTUNE_CHECK(std::isfinite(p.loss), "train: the loss became {} at epoch {} step {} (try a lower --lr)", p.loss,
                epoch_ + 1, p.batch);
    if (hooks.on_batch) hooks.on_batch(p);
  };
  if (from_cache) {
    for (size_t k = 0; k < train_.batches_per_epoch(); ++k) {
      PendingStep s = queue_cached_step(view, keys(k));
      if (pending) finish();
      pending = std::move(s);
    }
  } else {
    for (size_t k = 0; train_.next(b); ++k) {
      PendingStep s = view >= 0 ? queue_step(b, view, keys(k)) : queue_step(b);
      if (pending) finish();
      pending = std::move(s);
      upload_done_.wait();  // before the loader refills b's buffer
    }
  }
  if (pending) finish();
  tm = sum_over_ranks(comm_, tm);
  const double train_seconds = seconds_since(t0);
  EpochRecord r;
  r.epoch = epoch_ + 1;
  r.phase = phase_;
  r.train_loss = tm.loss();
  r.train_top1 = tm.top1();
  r.lr = current_lr();
  const std::vector<double> glr = group_lrs();
  for (size_t g = 0; g < glr.size(); ++g) r.group_lrs.emplace_back(lr_groups_[g], glr[g]);
  r.images_per_s = train_seconds > 0 ? double(tm.totals().count) / train_seconds : 0;  // all ranks' images
  r.comm_seconds = grads_.take_seconds();
  double metric = r.train_loss;
  if (val_) {
    Progress vp = p;
    auto on_val = [&](const Progress& q) {
      vp.validating = true;
      vp.batch = q.batch;
      vp.batches = q.batches;
      if (hooks.on_batch) hooks.on_batch(vp);
    };
    broadcast_buffers(comm_, model_);  // BN running statistics as rank 0's, which rank 0 saves (DDP's broadcast_buffers)
    last_eval_ = std::make_unique<EvalResult>(evaluate(model_, *val_, cfg_.val_norm, num_classes_, cfg_.dtype,
                                                       cfg_.device, cfg_.precision, cfg_.label_smoothing,
                                                       cfg_.keep_val_samples, on_val, val_features_.get()));
    // Each rank scored its shard of the validation set: the counts of all; the kept samples are this rank's.
    last_eval_->metrics = sum_over_ranks(comm_, last_eval_->metrics);
    r.has_val = true;
    r.val_loss = last_eval_->metrics.loss();
    r.val_top1 = last_eval_->metrics.top1();
    r.val_top5 = last_eval_->metrics.top5();
    metric = r.val_loss;
  }
  if (sched_ && sched_->step_unit() == sched::StepUnit::epoch) {
    if (sched_->needs_metric()) sched_->step(metric);  // ReduceLROnPlateau(mode=min) on the val loss
    else sched_->step();
    apply_sched_lrs();
  }
  const double score = r.has_val ? r.val_top1 : r.train_top1;
  if (score > best_top1_) {
    best_top1_ = score;
    best_epoch_ = r.epoch;
    r.best = true;
    if (last_eval_) best_eval_ = std::make_unique<EvalResult>(*last_eval_);  // what best.safetensors scores
  }
  r.seconds = seconds_since(t0);
  epoch_++;
  history_.push_back(r);
  if (hooks.on_epoch) hooks.on_epoch(r);
  return r;
}

void Trainer::fit(const Hooks& hooks) {
  while (epoch_ < cfg_.epochs) run_epoch(hooks);
}

io::Checkpoint Trainer::checkpoint() const {
  io::Checkpoint ck;
  for (auto& [name, t] : model_.state_dict()) ck.tensors.emplace_back("model." + name, *t);
  for (auto& [name, t] : opt_->state_tensors()) ck.tensors.emplace_back(name, t);
  nlohmann::json& s = ck.state;
  s["epoch"] = epoch_;
  s["global_step"] = global_step_;
  s["phase"] = phase_;
  s["num_classes"] = num_classes_;
  s["optimizer"] = opt_->state_json();
  s["scheduler"] = sched_ ? sched_->state() : nlohmann::json();
  s["best_top1"] = best_top1_;
  s["best_epoch"] = best_epoch_;
  s["config"] = cfg_.to_json();
  s["history"] = nlohmann::json::array();
  for (auto& h : history_) s["history"].push_back(h.to_json());
  // Per-step records as parallel arrays: compact, and exact (JSON doubles round-trip).
  nlohmann::json loss = nlohmann::json::array(), lr = nlohmann::json::array();
  for (auto& st : steps_) {
    loss.push_back(st.loss);
    lr.push_back(st.lr);
  }
  s["steps"] = {{"loss", loss}, {"lr", lr}, {"epoch", nlohmann::json::array()}};
  for (auto& st : steps_) s["steps"]["epoch"].push_back(st.epoch);
  // Group LRs as one array per group (a step restored from an older checkpoint has none: null).
  s["lr_groups"] = lr_groups_;
  nlohmann::json glr = nlohmann::json::array();
  for (size_t g = 0; g < lr_groups_.size(); ++g) {
    nlohmann::json col = nlohmann::json::array();
    for (auto& st : steps_) col.push_back(g < st.group_lrs.size() ? lr_json(st.group_lrs[g]) : nlohmann::json());
    glr.push_back(std::move(col));
  }
  s["steps"]["group_lrs"] = std::move(glr);
  // The last validation, so that a resumed run can rewrite report.html exactly as it was meant to be.
  if (last_eval_) s["last_eval"] = eval_state(*last_eval_, num_classes_, "eval.confusion", ck);
  // The best epoch's validation: the confusion matrix of best.safetensors, after a resume too.
  if (best_eval_) s["best_eval"] = eval_state(*best_eval_, num_classes_, "best_eval.confusion", ck);
  return ck;
}

void Trainer::restore(const io::Checkpoint& ck) {
  const nlohmann::json& s = ck.state;
  try {
    RTUNE_CHECK(s.at("num_classes").get<int64_t>() == num_classes_, "checkpoint has {} classes, the data {}",
                s.at("num_classes").get<int64_t>(), num_classes_);
    RTUNE_CHECK(s.at("config").at("optimizer").at("kind") == cfg_.opt.kind,
                "checkpoint was trained with --opt {}, not {}", s.at("config").at("optimizer").at("kind").dump(),
                cfg_.opt.kind);
    const int64_t phase = s.at("phase").get<int64_t>();
    if (phase != phase_) start_phase(phase);
    for (auto& [name, t] : model_.state_dict()) {
      const Tensor* src = ck.find("model." + name);
      RTUNE_CHECK(src, "checkpoint has no tensor 'model.{}'", name);
      RTUNE_CHECK(src->shape() == t->shape(), "checkpoint tensor 'model.{}' has shape {}, the model {}", name,
                  shape_str(src->shape()), shape_str(t->shape()));
      t->detach().copy_(src->to(t->dtype()).to(t->device()));
    }
    std::vector<std::pair<std::string, Tensor>> ostate;
    for (auto& [name, t] : ck.tensors)
      if (name.rfind("optim.", 0) == 0) ostate.emplace_back(name, t);
    opt_->load_state_json(s.at("optimizer"));
    opt_->load_state_tensors(ostate);
    if (sched_) {
      RTUNE_CHECK(!s.at("scheduler").is_null(), "checkpoint was trained without a scheduler, this run has --sched");
      sched_->load_state(s.at("scheduler"));
      apply_sched_lrs();
    } else {
      RTUNE_CHECK(s.at("scheduler").is_null(), "checkpoint was trained with a scheduler, this run has none");
    }
    epoch_ = s.at("epoch").get<int64_t>();
    global_step_ = s.at("global_step").get<int64_t>();
    best_top1_ = s.at("best_top1").get<double>();
    best_epoch_ = s.at("best_epoch").get<int64_t>();
    history_.clear();
    for (auto& h : s.at("history")) history_.push_back(EpochRecord::from_json(h));
    steps_.clear();
    const auto& st = s.at("steps");
    for (size_t i = 0; i < st.at("loss").size(); ++i)
      steps_.push_back({int64_t(i), st["epoch"][i].get<int64_t>(), st["loss"][i].get<double>(), st["lr"][i].get<double>()});
    if (st.contains("group_lrs")) {  // absent from checkpoints written before group LRs were logged
      RTUNE_CHECK(s.at("lr_groups").get<std::vector<std::string>>() == lr_groups_,
                  "checkpoint has LR groups {}, this run {}", s.at("lr_groups").dump(), nlohmann::json(lr_groups_).dump());
      const auto& cols = st.at("group_lrs");
      for (const auto& col : cols)
        RTUNE_CHECK(col.size() == steps_.size(), "checkpoint has {} group LRs for {} steps", col.size(), steps_.size());
      // Every group null: a step from before group LRs were logged (some group always trains), kept empty.
      for (size_t i = 0; i < steps_.size(); ++i)
        if (std::any_of(cols.begin(), cols.end(), [&](const nlohmann::json& col) { return !col[i].is_null(); }))
          for (const auto& col : cols) steps_[i].group_lrs.push_back(lr_from_json(col[i]));
    }
    last_eval_.reset();
    best_eval_.reset();
    // Absent from checkpoints written before they were kept.
    if (s.contains("last_eval")) last_eval_ = eval_from_state(s.at("last_eval"), num_classes_, "eval.confusion", ck);
    if (s.contains("best_eval")) best_eval_ = eval_from_state(s.at("best_eval"), num_classes_, "best_eval.confusion", ck);
    else if (last_eval_ && best_epoch_ == epoch_) best_eval_ = std::make_unique<EvalResult>(*last_eval_);
  } catch (const nlohmann::json::exception& e) {
    fail("checkpoint: malformed training state: {}", e.what());
  }
}

}  // namespace rtune::finetune
