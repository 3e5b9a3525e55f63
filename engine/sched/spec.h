// Scheduler factory from a compact spec string, e.g.
//   step:step_size=7,gamma=0.1            multistep:milestones=[30,60],gamma=0.1
//   cosine:t_max=10,eta_min=1e-5          exponential:gamma=0.95
//   linear:start_factor=0.1,total_iters=5 (end_factor)
//   onecycle:max_lr=0.01,total_steps=1000 (epochs, steps_per_epoch, pct_start, anneal=cos|linear,
//            cycle_momentum, base_momentum, max_momentum, div_factor, final_div_factor, three_phase)
//   plateau:patience=2,factor=0.5         (mode=min|max, threshold, threshold_mode=rel|abs, cooldown,
//            min_lr, eps)
// Keys and defaults are PyTorch's constructor arguments (lower case). Lists are [a,b,...]; booleans
// are true/false/1/0. Anything unknown, missing, duplicated or out of range throws rtune::Error
// naming the spec and the problem.
#pragma once
#include <memory>
#include <span>
#include <string_view>

#include "engine/sched/scheduler.h"

namespace rtune::sched {

// What the trainer knows that a spec may leave out: cosine without t_max uses `epochs`; onecycle without
// total_steps/epochs/steps_per_epoch uses epochs * steps_per_epoch; onecycle without max_lr uses each
// group's base LR as its max_lr. 0 = unknown.
struct SchedContext {
  int64_t epochs = 0;
  int64_t steps_per_epoch = 0;
};

// base_lrs: the optimizer's LR per parameter group.
std::unique_ptr<Scheduler> make_scheduler(std::string_view spec, std::span<const double> base_lrs,
                                          const SchedContext& ctx = {});

}  // namespace rtune::sched
