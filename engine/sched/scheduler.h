// Learning-rate scheduler interface matching torch.optim.lr_scheduler (torch 2.11) semantics: after
// construction lrs() is the LR of the first epoch/batch (PyTorch's initial step, last_epoch = 0);
// each step() advances last_epoch by one and computes the next LRs with PyTorch's own (chainable,
// recursive) formulas, so sequences match PyTorch to rounding. The scheduler owns the current LR of
// every parameter group; the trainer copies lrs() (and momentum(), when non-empty) into its optimizer.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace rtune::sched {

// When the trainer calls step(): after every optimizer step (batch) or after every epoch.
enum class StepUnit { batch, epoch };

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  Scheduler(const Scheduler&) = default;
  Scheduler& operator=(const Scheduler&) = default;

  // Advance one epoch/batch. Schedulers that need a metric (needs_metric()) take step(metric) and
  // throw rtune::Error from step(); the others throw from step(metric).
  virtual void step();
  virtual void step(double metric);
  virtual bool needs_metric() const { return false; }

  // Current LR per parameter group, and the LRs the schedule was started from.
  const std::vector<double>& lrs() const { return lrs_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  // Momentum (SGD, RMSprop) or beta1 (Adam, AdamW) per group when this scheduler drives it; else empty.
  const std::vector<double>& momentum() const { return momentum_; }
  // PyTorch's last_epoch: how many times step() was called.
  int64_t last_epoch() const { return last_epoch_; }
  size_t num_groups() const { return lrs_.size(); }

  virtual StepUnit step_unit() const { return StepUnit::epoch; }
  // Short name used in specs and state: "step", "multistep", "cosine", "onecycle", ...
  virtual std::string_view kind() const = 0;
  // Hyper-parameters as JSON (what the spec string set, with defaults filled in).
  virtual nlohmann::json config() const = 0;

  // Everything needed to resume exactly: kind, config, last_epoch, base/current LRs, momentum and
  // the scheduler's own counters. Non-finite numbers are written as the strings "inf", "-inf", "nan".
  nlohmann::json state() const;
  // Restores state(); throws rtune::Error when it was saved by another kind, another configuration
  // or another number of parameter groups, or is malformed.
  void load_state(const nlohmann::json& s);

 protected:
  // base_lrs: one per parameter group (at least one). lrs() starts equal to it.
  explicit Scheduler(std::vector<double> base_lrs);
  // Computes lrs_ (and momentum_) for last_epoch_, which step() has already incremented.
  virtual void advance() = 0;
  virtual nlohmann::json extra_state() const { return nlohmann::json::object(); }
  virtual void load_extra_state(const nlohmann::json&) {}

  std::vector<double> base_lrs_, lrs_, momentum_;
  int64_t last_epoch_ = 0;
};

// JSON numbers that survive inf/nan (JSON has neither): finite -> number, else "inf"/"-inf"/"nan".
nlohmann::json number_to_json(double x);
double number_from_json(const nlohmann::json& j, std::string_view what);

}  // namespace rtune::sched
