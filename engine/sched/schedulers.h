// The concrete schedulers, each matching its torch.optim.lr_scheduler namesake (torch 2.11 get_lr,
// i.e. the chainable/recursive forms PyTorch uses when step() is called without an epoch).
// Constructors validate their options and throw rtune::Error naming the scheduler and the option.
#pragma once
#include <string>

#include "engine/sched/scheduler.h"

namespace rtune::sched {

// StepLR: lr *= gamma every step_size epochs.
struct StepLROptions {
  int64_t step_size = 0;  // >= 1
  double gamma = 0.1;
};
class StepLR final : public Scheduler {
 public:
  StepLR(std::vector<double> base_lrs, StepLROptions o);
  std::string_view kind() const override { return "step"; }
  nlohmann::json config() const override;

 private:
  void advance() override;
  StepLROptions o_;
};

// MultiStepLR: lr *= gamma^k at an epoch listed k times in milestones (PyTorch's Counter).
struct MultiStepLROptions {
  std::vector<int64_t> milestones;  // each >= 1
  double gamma = 0.1;
};
class MultiStepLR final : public Scheduler {
 public:
  MultiStepLR(std::vector<double> base_lrs, MultiStepLROptions o);
  std::string_view kind() const override { return "multistep"; }
  nlohmann::json config() const override;

 private:
  void advance() override;
  MultiStepLROptions o_;
};

// CosineAnnealingLR: PyTorch's recursive form, including its restart branch after t_max epochs.
struct CosineAnnealingLROptions {
  int64_t t_max = 0;  // >= 1
  double eta_min = 0.0;
};
class CosineAnnealingLR final : public Scheduler {
 public:
  CosineAnnealingLR(std::vector<double> base_lrs, CosineAnnealingLROptions o);
  std::string_view kind() const override { return "cosine"; }
  nlohmann::json config() const override;

 private:
  void advance() override;
  CosineAnnealingLROptions o_;
};

// LinearLR: factor goes linearly from start_factor to end_factor over total_iters epochs (warm-up).
struct LinearLROptions {
  double start_factor = 1.0 / 3;  // in (0, 1]
  double end_factor = 1.0;        // in [0, 1]
  int64_t total_iters = 5;        // >= 1
};
class LinearLR final : public Scheduler {
 public:
  LinearLR(std::vector<double> base_lrs, LinearLROptions o);
  std::string_view kind() const override { return "linear"; }
  nlohmann::json config() const override;

 private:
  void advance() override;
  LinearLROptions o_;
};

// ExponentialLR: lr *= gamma every epoch.
struct ExponentialLROptions {
  double gamma = 0.0;  // > 0
};
class ExponentialLR final : public Scheduler {
 public:
  ExponentialLR(std::vector<double> base_lrs, ExponentialLROptions o);
  std::string_view kind() const override { return "exponential"; }
  nlohmann::json config() const override;

 private:
  void advance() override;
  ExponentialLROptions o_;
};

// OneCycleLR (per batch): initial_lr = max_lr/div_factor up to max_lr over pct_start of the steps, then
// down to initial_lr/final_div_factor (three_phase: back to initial_lr first). With cycle_momentum the
// momentum (or Adam's beta1) moves inversely between max_momentum and base_momentum. The base LRs given
// to the constructor are ignored, as in PyTorch; they only fix the number of groups.
struct OneCycleLROptions {
  std::vector<double> max_lr;  // one for all groups or one per group; empty: each group's base LR
  int64_t total_steps = 0;     // >= 1
  double pct_start = 0.3;      // in [0, 1]
  bool linear = false;         // anneal_strategy "linear" instead of "cos"
  bool cycle_momentum = true;
  double base_momentum = 0.85;
  double max_momentum = 0.95;
  double div_factor = 25.0;
  double final_div_factor = 1e4;
  bool three_phase = false;
};
class OneCycleLR final : public Scheduler {
 public:
  OneCycleLR(std::vector<double> base_lrs, OneCycleLROptions o);
  std::string_view kind() const override { return "onecycle"; }
  StepUnit step_unit() const override { return StepUnit::batch; }
  nlohmann::json config() const override;
  int64_t total_steps() const { return o_.total_steps; }

 private:
  struct Phase {
    double end_step;
    int start_lr, end_lr;  // 0 initial_lr, 1 max_lr, 2 min_lr
    bool start_at_max_momentum, end_at_max_momentum;
  };
  void advance() override;
  double anneal(double start, double end, double pct) const;
  OneCycleLROptions o_;
  std::vector<double> initial_lr_, max_lr_, min_lr_;
  std::vector<Phase> phases_;
};

// ReduceLROnPlateau: step(metric); after more than `patience` epochs without improvement the LR is
// multiplied by factor (not below min_lr, and only if it changes by more than eps), then `cooldown`
// epochs are ignored.
struct ReduceLROnPlateauOptions {
  bool mode_max = false;          // mode "max": a larger metric is better
  double factor = 0.1;            // in [0, 1)
  int64_t patience = 10;          // >= 0
  double threshold = 1e-4;
  bool threshold_abs = false;     // threshold_mode "abs" instead of "rel"
  int64_t cooldown = 0;           // >= 0
  std::vector<double> min_lr{0.0};  // one for all groups or one per group
  double eps = 1e-8;
};
class ReduceLROnPlateau final : public Scheduler {
 public:
  ReduceLROnPlateau(std::vector<double> base_lrs, ReduceLROnPlateauOptions o);
  std::string_view kind() const override { return "plateau"; }
  nlohmann::json config() const override;
  bool needs_metric() const override { return true; }
  void step() override;
  void step(double metric) override;
  double best() const { return best_; }
  int64_t num_bad_epochs() const { return num_bad_epochs_; }

 private:
  void advance() override {}
  bool is_better(double a, double best) const;
  nlohmann::json extra_state() const override;
  void load_extra_state(const nlohmann::json& j) override;
  ReduceLROnPlateauOptions o_;
  std::vector<double> min_lrs_;
  double best_;
  int64_t num_bad_epochs_ = 0, cooldown_counter_ = 0;
};

}  // namespace rtune::sched
