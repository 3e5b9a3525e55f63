// StepLR, MultiStepLR, CosineAnnealingLR, LinearLR, ExponentialLR: the chainable get_lr of
// torch.optim.lr_scheduler (torch 2.11), written with PyTorch's operation order so the float64 LR
// sequences match it to rounding.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "engine/error.h"
#include "engine/sched/schedulers.h"

namespace rtune::sched {

using nlohmann::json;

// ---- StepLR ------------------------------------------------------------------------------------------

StepLR::StepLR(std::vector<double> base_lrs, StepLROptions o) : Scheduler(std::move(base_lrs)), o_(o) {
  if (o_.step_size < 1) fail("StepLR: step_size must be >= 1, got {}", o_.step_size);
}

json StepLR::config() const { return {{"step_size", o_.step_size}, {"gamma", o_.gamma}}; }

void StepLR::advance() {
  if (last_epoch_ % o_.step_size != 0) return;
  for (double& lr : lrs_) lr = lr * o_.gamma;
}

// ---- MultiStepLR -------------------------------------------------------------------------------------

MultiStepLR::MultiStepLR(std::vector<double> base_lrs, MultiStepLROptions o)
    : Scheduler(std::move(base_lrs)), o_(std::move(o)) {
  if (o_.milestones.empty()) fail("MultiStepLR: needs at least one milestone");
  for (int64_t m : o_.milestones)
    if (m < 1) fail("MultiStepLR: milestones must be >= 1 (epochs after the first), got {}", m);
  std::sort(o_.milestones.begin(), o_.milestones.end());
}

json MultiStepLR::config() const { return {{"milestones", o_.milestones}, {"gamma", o_.gamma}}; }

void MultiStepLR::advance() {
  const auto k = std::count(o_.milestones.begin(), o_.milestones.end(), last_epoch_);
  if (k == 0) return;
  const double f = std::pow(o_.gamma, double(k));  // Python: gamma ** count
  for (double& lr : lrs_) lr = lr * f;
}

// ---- CosineAnnealingLR -------------------------------------------------------------------------------

CosineAnnealingLR::CosineAnnealingLR(std::vector<double> base_lrs, CosineAnnealingLROptions o)
    : Scheduler(std::move(base_lrs)), o_(o) {
  if (o_.t_max < 1) fail("CosineAnnealingLR: t_max must be >= 1, got {}", o_.t_max);
}

json CosineAnnealingLR::config() const { return {{"t_max", o_.t_max}, {"eta_min", o_.eta_min}}; }

void CosineAnnealingLR::advance() {
  constexpr double pi = std::numbers::pi;
  const double T = double(o_.t_max), e = double(last_epoch_), eta = o_.eta_min;
  if ((last_epoch_ - 1 - o_.t_max) % (2 * o_.t_max) == 0) {
    // Restart branch: the recursive ratio below would divide by 1 + cos(pi) = 0.
    for (size_t i = 0; i < lrs_.size(); ++i)
      lrs_[i] = lrs_[i] + (base_lrs_[i] - eta) * (1 - std::cos(pi / T)) / 2;
    return;
  }
  const double ratio = (1 + std::cos(pi * e / T)) / (1 + std::cos(pi * (e - 1) / T));
  for (double& lr : lrs_) lr = ratio * (lr - eta) + eta;
}

// ---- LinearLR ----------------------------------------------------------------------------------------

LinearLR::LinearLR(std::vector<double> base_lrs, LinearLROptions o) : Scheduler(std::move(base_lrs)), o_(o) {
  if (!(o_.start_factor > 0.0 && o_.start_factor <= 1.0))
    fail("LinearLR: start_factor must be in (0, 1], got {}", o_.start_factor);
  if (!(o_.end_factor >= 0.0 && o_.end_factor <= 1.0))
    fail("LinearLR: end_factor must be in [0, 1], got {}", o_.end_factor);
  if (o_.total_iters < 1) fail("LinearLR: total_iters must be >= 1, got {}", o_.total_iters);
  for (double& lr : lrs_) lr = lr * o_.start_factor;  // PyTorch's initial step (last_epoch 0)
}

json LinearLR::config() const {
  return {{"start_factor", o_.start_factor}, {"end_factor", o_.end_factor}, {"total_iters", o_.total_iters}};
}

void LinearLR::advance() {
  if (last_epoch_ > o_.total_iters) return;
  const double d = o_.end_factor - o_.start_factor;
  const double f = 1.0 + d / (double(o_.total_iters) * o_.start_factor + double(last_epoch_ - 1) * d);
  for (double& lr : lrs_) lr = lr * f;
}

// ---- ExponentialLR -----------------------------------------------------------------------------------

ExponentialLR::ExponentialLR(std::vector<double> base_lrs, ExponentialLROptions o)
    : Scheduler(std::move(base_lrs)), o_(o) {
  if (!(o_.gamma > 0.0)) fail("ExponentialLR: gamma must be > 0, got {}", o_.gamma);
}

json ExponentialLR::config() const { return {{"gamma", o_.gamma}}; }

void ExponentialLR::advance() {
  for (double& lr : lrs_) lr = lr * o_.gamma;
}

}  // namespace rtune::sched
