// OneCycleLR matching torch.optim.lr_scheduler.OneCycleLR (torch 2.11): phase table, cos/linear
// annealing and the inverse momentum (beta1) cycle, with PyTorch's float operation order.
#include <cmath>
#include <numbers>

#include "engine/error.h"
#include "engine/sched/schedulers.h"

namespace rtune::sched {

using nlohmann::json;

namespace {
enum LrRole { kInitial = 0, kMax = 1, kMin = 2 };
}  // namespace

OneCycleLR::OneCycleLR(std::vector<double> base_lrs, OneCycleLROptions o)
    : Scheduler(std::move(base_lrs)), o_(std::move(o)) {
  const size_t n = lrs_.size();
  if (o_.total_steps < 1) fail("OneCycleLR: total_steps must be >= 1, got {}", o_.total_steps);
  if (!(o_.pct_start >= 0.0 && o_.pct_start <= 1.0))
    fail("OneCycleLR: pct_start must be in [0, 1], got {}", o_.pct_start);
  if (!(o_.div_factor > 0.0)) fail("OneCycleLR: div_factor must be > 0, got {}", o_.div_factor);
  if (!(o_.final_div_factor > 0.0)) fail("OneCycleLR: final_div_factor must be > 0, got {}", o_.final_div_factor);
  if (o_.max_lr.empty()) max_lr_ = base_lrs_;
  else if (o_.max_lr.size() == 1) max_lr_.assign(n, o_.max_lr[0]);
  else if (o_.max_lr.size() == n) max_lr_ = o_.max_lr;
  else fail("OneCycleLR: max_lr has {} values, there are {} parameter groups", o_.max_lr.size(), n);
  for (double m : max_lr_)
    if (!(m > 0.0)) fail("OneCycleLR: max_lr must be > 0, got {}", m);

  const double T = double(o_.total_steps), pct = o_.pct_start;
  if (o_.three_phase) {
    phases_ = {{pct * T - 1, kInitial, kMax, true, false},
               {2 * pct * T - 2, kMax, kInitial, false, true},
               {T - 1, kInitial, kMin, true, true}};
  } else {
    phases_ = {{pct * T - 1, kInitial, kMax, true, false}, {T - 1, kMax, kMin, false, true}};
  }
  for (size_t i = 0; i < n; ++i) {
    initial_lr_.push_back(max_lr_[i] / o_.div_factor);
    min_lr_.push_back(initial_lr_.back() / o_.final_div_factor);
  }
  base_lrs_ = initial_lr_;  // PyTorch overwrites group["initial_lr"], hence base_lrs
  if (o_.cycle_momentum) momentum_.assign(n, o_.max_momentum);
  advance();  // PyTorch's initial step: the LR (and momentum) of step 0
}

json OneCycleLR::config() const {
  return {{"max_lr", max_lr_},
          {"total_steps", o_.total_steps},
          {"pct_start", o_.pct_start},
          {"anneal", o_.linear ? "linear" : "cos"},
          {"cycle_momentum", o_.cycle_momentum},
          {"base_momentum", o_.base_momentum},
          {"max_momentum", o_.max_momentum},
          {"div_factor", o_.div_factor},
          {"final_div_factor", o_.final_div_factor},
          {"three_phase", o_.three_phase}};
}

double OneCycleLR::anneal(double start, double end, double pct) const {
  if (o_.linear) return (end - start) * pct + start;
  const double cos_out = std::cos(std::numbers::pi * pct) + 1;
  return end + (start - end) / 2.0 * cos_out;
}

void OneCycleLR::advance() {
  const int64_t step = last_epoch_;
  if (step > o_.total_steps)
    fail("OneCycleLR: stepped {} times, but total_steps is {}", step, o_.total_steps);
  double start_step = 0.0;
  for (size_t p = 0; p < phases_.size(); ++p) {
    const Phase& ph = phases_[p];
    if (double(step) <= ph.end_step || p + 1 == phases_.size()) {
      if (ph.end_step == start_step)
        fail("OneCycleLR: pct_start={} with total_steps={} leaves phase {} empty", o_.pct_start,
             o_.total_steps, p + 1);
      const double pct = (double(step) - start_step) / (ph.end_step - start_step);
      const double* role[3] = {initial_lr_.data(), max_lr_.data(), min_lr_.data()};
      for (size_t g = 0; g < lrs_.size(); ++g) {
        lrs_[g] = anneal(role[ph.start_lr][g], role[ph.end_lr][g], pct);
        if (o_.cycle_momentum) {
          const double m0 = ph.start_at_max_momentum ? o_.max_momentum : o_.base_momentum;
          const double m1 = ph.end_at_max_momentum ? o_.max_momentum : o_.base_momentum;
          momentum_[g] = anneal(m0, m1, pct);
        }
      }
      return;
    }
    start_step = ph.end_step;
  }
}

}  // namespace rtune::sched
