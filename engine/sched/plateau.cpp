// ReduceLROnPlateau matching torch.optim.lr_scheduler.ReduceLROnPlateau (torch 2.11): rel/abs
// thresholds, patience, cooldown, per-group min_lr and the eps rule for skipping tiny decays.
#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "engine/sched/schedulers.h"

namespace rtune::sched {

using nlohmann::json;

ReduceLROnPlateau::ReduceLROnPlateau(std::vector<double> base_lrs, ReduceLROnPlateauOptions o)
    : Scheduler(std::move(base_lrs)), o_(std::move(o)) {
  const size_t n = lrs_.size();
  if (!(o_.factor >= 0.0 && o_.factor < 1.0)) fail("ReduceLROnPlateau: factor must be in [0, 1), got {}", o_.factor);
  if (o_.patience < 0) fail("ReduceLROnPlateau: patience must be >= 0, got {}", o_.patience);
  if (o_.cooldown < 0) fail("ReduceLROnPlateau: cooldown must be >= 0, got {}", o_.cooldown);
  if (!std::isfinite(o_.threshold)) fail("ReduceLROnPlateau: threshold must be finite, got {}", o_.threshold);
  if (!(o_.eps >= 0.0)) fail("ReduceLROnPlateau: eps must be >= 0, got {}", o_.eps);
  if (o_.min_lr.size() == 1) min_lrs_.assign(n, o_.min_lr[0]);
  else if (o_.min_lr.size() == n) min_lrs_ = o_.min_lr;
  else fail("ReduceLROnPlateau: min_lr has {} values, there are {} parameter groups", o_.min_lr.size(), n);
  for (double m : min_lrs_)
    if (!(m >= 0.0)) fail("ReduceLROnPlateau: min_lr must be >= 0, got {}", m);
  best_ = o_.mode_max ? -INFINITY : INFINITY;  // mode_worse
}

json ReduceLROnPlateau::config() const {
  return {{"mode", o_.mode_max ? "max" : "min"},
          {"factor", o_.factor},
          {"patience", o_.patience},
          {"threshold", o_.threshold},
          {"threshold_mode", o_.threshold_abs ? "abs" : "rel"},
          {"cooldown", o_.cooldown},
          {"min_lr", min_lrs_},
          {"eps", o_.eps}};
}

bool ReduceLROnPlateau::is_better(double a, double best) const {
  if (!o_.mode_max) return o_.threshold_abs ? a < best - o_.threshold : a < best * (1.0 - o_.threshold);
  return o_.threshold_abs ? a > best + o_.threshold : a > best * (o_.threshold + 1.0);
}

void ReduceLROnPlateau::step() {
  fail("ReduceLROnPlateau: step() needs the monitored metric: call step(metric)");
}

void ReduceLROnPlateau::step(double metric) {
  ++last_epoch_;
  if (is_better(metric, best_)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    num_bad_epochs_ = 0;  // bad epochs during cooldown do not count
  }
  if (num_bad_epochs_ > o_.patience) {
    for (size_t i = 0; i < lrs_.size(); ++i) {
      const double old_lr = lrs_[i];
      const double new_lr = std::max(old_lr * o_.factor, min_lrs_[i]);
      if (old_lr - new_lr > o_.eps) lrs_[i] = new_lr;
    }
    cooldown_counter_ = o_.cooldown;
    num_bad_epochs_ = 0;
  }
}

json ReduceLROnPlateau::extra_state() const {
  return {{"best", number_to_json(best_)},
          {"num_bad_epochs", num_bad_epochs_},
          {"cooldown_counter", cooldown_counter_}};
}

void ReduceLROnPlateau::load_extra_state(const json& j) {
  auto get_count = [&](const char* key) {
    if (!j.is_object() || !j.contains(key) || !j.at(key).is_number_integer() || j.at(key).get<int64_t>() < 0)
      fail("scheduler state: plateau needs a non-negative integer '{}'", key);
    return j.at(key).get<int64_t>();
  };
  if (!j.is_object() || !j.contains("best")) fail("scheduler state: plateau needs 'best'");
  const double best = number_from_json(j.at("best"), "best");
  const int64_t bad = get_count("num_bad_epochs"), cool = get_count("cooldown_counter");
  best_ = best;
  num_bad_epochs_ = bad;
  cooldown_counter_ = cool;
}

}  // namespace rtune::sched
