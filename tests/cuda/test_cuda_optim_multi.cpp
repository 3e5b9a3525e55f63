// Multi-tensor optimizer updates (kernels::sgd/adam/rmsprop_update_many, PyTorch's fused=True idea) on
// the device against the CPU backend's parameter-by-parameter loop: lists longer than one launch takes,
// of odd sizes (one empty), each parameter with its own hyper-parameters, Adam step count and SGD
// first-step flag. The simulated device runs the same update_rules.h code through the same host
// compiler, so results must be bit-identical in f32 and f64; on a GPU nvcc may contract a*b+c into an
// FMA, hence f32 1e-6 / 1e-7 and f64 1e-12 / 1e-14 there. In the simulated build the launches are
// counted: N non-empty parameters take ceil(N / K) kernels (161 for a ResNet-50 before, one per tensor).
#include <functional>
#include <limits>

#include "engine/optim/optimizer.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/ops.h"
#include "models/resnet.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/cuda/skip_without_device.h"
#ifdef RTUNE_CUDA_SIM
#include "kernels/cuda/sim/execution.h"
#endif

using namespace rtune;
using namespace rtune::cudatest;
namespace K = rtune::kernels;

namespace {

constexpr int kSteps = 3;
constexpr int64_t kSizes[] = {1, 7, 1000, 4097, 3, 257, 33, 0, 129, 2};  // cycled; 0: an empty parameter

#ifdef RTUNE_CUDA_SIM
constexpr double kRtol32 = 0, kAtol32 = 0, kRtol64 = 0, kAtol64 = 0;
uint64_t launches() { return cuda::sim::launch_count(); }
#else
constexpr double kRtol32 = 1e-6, kAtol32 = 1e-7, kRtol64 = 1e-12, kAtol64 = 1e-14;
#endif

// One copy of a parameter list: parameters, a gradient per step, three state buffers each (zeros,
// as PyTorch starts every buffer the update rules read).
struct List {
  std::vector<Tensor> p;
  std::vector<std::vector<Tensor>> g;  // [step][parameter]
  std::vector<std::array<Tensor, 3>> st;
};

List make_list(size_t count, DType dt, uint64_t seed) {
  Rng r(seed);
  List l;
  l.g.resize(kSteps);
  for (size_t i = 0; i < count; ++i) {
    Shape s{kSizes[i % std::size(kSizes)]};
    l.p.push_back(randn_cpu(s, r, dt));
    for (int k = 0; k < kSteps; ++k) l.g[size_t(k)].push_back(randn_cpu(s, r, dt));
    l.st.push_back({zeros(s, {dt}), zeros(s, {dt}), zeros(s, {dt})});
  }
  return l;
}
List to_device(const List& c) {
  List d;
  for (const Tensor& t : c.p) d.p.push_back(dev(t));
  for (const auto& step : c.g) {
    d.g.emplace_back();
    for (const Tensor& t : step) d.g.back().push_back(dev(t));
  }
  for (const auto& s : c.st) d.st.push_back({dev(s[0]), dev(s[1]), dev(s[2])});
  return d;
}
size_t non_empty(const List& l) {
  size_t n = 0;
  for (const Tensor& t : l.p) n += t.numel() > 0;
  return n;
}

// Runs kSteps list updates on a CPU copy and a device copy of `count` parameters; slots(list, i, k) is
// parameter i's slot at step k (1-based). Checks every parameter and buffer, and the launch count.
template <class Slot>
void check_list(DType dt, size_t count, int per_launch, void (*update)(const std::vector<Slot>&),
                const std::function<Slot(List&, size_t, int)>& slot) {
  CAPTURE(dtype_name(dt));
  List c = make_list(count, dt, 17), d = to_device(c);
  for (int k = 1; k <= kSteps; ++k) {
    std::vector<Slot> cs, ds;
    for (size_t i = 0; i < count; ++i) {
      cs.push_back(slot(c, i, k));
      ds.push_back(slot(d, i, k));
    }
    update(cs);
#ifdef RTUNE_CUDA_SIM
    const uint64_t before = launches();
    update(ds);
    CHECK(launches() - before == (non_empty(d) + size_t(per_launch) - 1) / size_t(per_launch));
#else
    (void)per_launch;
    update(ds);
#endif
  }
  const double rtol = dt == DType::f32 ? kRtol32 : kRtol64, atol = dt == DType::f32 ? kAtol32 : kAtol64;
  for (size_t i = 0; i < count; ++i) {
    CAPTURE(i);
    CHECK_CLOSE(d.p[i].cpu(), c.p[i], rtol, atol);
    for (size_t j = 0; j < 3; ++j) CHECK_CLOSE(d.st[i][j].cpu(), c.st[i][j], rtol, atol);
  }
}

// More parameters than one launch takes, and not a multiple of it.
size_t count_for(int per_launch) { return size_t(2 * per_launch + 3); }
// Parameter groups differ in lr: give every third parameter its own.
double lr_scale(size_t i) { return 1.0 + 0.5 * double(i % 3); }

}  // namespace

TEST_CASE("sgd_update_many: device == CPU per parameter (momentum off/on, dampening, nesterov, first step)") {
  const int per = cuda::kSgdTensorsPerLaunch;
  struct Config {
    const char* name;
    double momentum, dampening, wd;
    bool nesterov, maximize, mixed_momentum;
  };
  const Config configs[] = {{"plain, wd", 0.0, 0.0, 1e-4, false, false, false},
                            {"momentum, dampening", 0.9, 0.1, 0.0, false, false, false},
                            {"nesterov, wd", 0.9, 0.0, 5e-4, true, false, false},
                            {"maximize, momentum on every other parameter", 0.8, 0.0, 1e-3, false, true, true}};
  for (const Config& cf : configs)
    for (DType dt : {DType::f64, DType::f32}) {
      CAPTURE(cf.name);
      check_list<K::SgdSlot>(dt, count_for(per), per, K::sgd_update_many, [&](List& l, size_t i, int k) {
        const double m = cf.mixed_momentum && i % 2 ? 0.0 : cf.momentum;
        optim::SgdHyper h{0.05 * lr_scale(i), m, cf.dampening, cf.wd, cf.nesterov && m != 0, cf.maximize};
        // Most buffers start at step 1; some parameters got their first gradient at step 2.
        const bool first = k == 1 || (i % 7 == 3 && k == 2);
        return K::SgdSlot{&l.p[i], &l.g[size_t(k - 1)][i], m != 0 ? &l.st[i][0] : nullptr, h, first};
      });
    }
}

TEST_CASE("adam_update_many: device == CPU per parameter (amsgrad, AdamW, per-parameter step counts)") {
  const int per = cuda::kAdamTensorsPerLaunch;
  struct Config {
    const char* name;
    double wd;
    bool amsgrad, decoupled, maximize;
  };
  const Config configs[] = {{"adam", 0.0, false, false, false},
                            {"adam amsgrad, wd", 1e-2, true, false, false},
                            {"adamw", 1e-2, false, true, false},
                            {"adamw amsgrad maximize", 1e-2, true, true, true}};
  for (const Config& cf : configs)
    for (DType dt : {DType::f64, DType::f32}) {
      CAPTURE(cf.name);
      check_list<K::AdamSlot>(dt, count_for(per), per, K::adam_update_many, [&](List& l, size_t i, int k) {
        optim::AdamHyper h{1e-2 * lr_scale(i), 0.9, 0.999, 1e-8, cf.wd, cf.amsgrad, cf.decoupled, cf.maximize};
        // PyTorch counts steps per parameter: parameters that skipped steps are behind.
        const int64_t step = k + int64_t(i % 4) * 5;
        return K::AdamSlot{&l.p[i], &l.g[size_t(k - 1)][i], &l.st[i][0], &l.st[i][1],
                           cf.amsgrad ? &l.st[i][2] : nullptr, optim::make_adam_step(h, step)};
      });
    }
}

TEST_CASE("rmsprop_update_many: device == CPU per parameter (centered, momentum)") {
  const int per = cuda::kRmspropTensorsPerLaunch;
  struct Config {
    const char* name;
    double momentum, wd;
    bool centered, maximize;
  };
  const Config configs[] = {{"plain", 0.0, 0.0, false, false},
                            {"centered", 0.0, 1e-4, true, false},
                            {"momentum", 0.9, 0.0, false, false},
                            {"centered momentum maximize, wd", 0.9, 1e-3, true, true}};
  for (const Config& cf : configs)
    for (DType dt : {DType::f64, DType::f32}) {
      CAPTURE(cf.name);
      check_list<K::RmspropSlot>(dt, count_for(per), per, K::rmsprop_update_many, [&](List& l, size_t i, int k) {
        optim::RmspropHyper h{1e-2 * lr_scale(i), 0.99, 1e-8, cf.wd, cf.momentum, cf.centered, cf.maximize};
        return K::RmspropSlot{&l.p[i], &l.g[size_t(k - 1)][i], &l.st[i][0], cf.centered ? &l.st[i][1] : nullptr,
                              cf.momentum > 0 ? &l.st[i][2] : nullptr, h};
      });
    }
}

TEST_CASE("list updates check every slot before the first launch: a bad slot leaves all parameters untouched") {
  List l = to_device(make_list(size_t(cuda::kAdamTensorsPerLaunch) + 5, DType::f32, 3));
  const std::vector<Tensor> before = [&] {
    std::vector<Tensor> v;
    for (const Tensor& p : l.p) v.push_back(p.cpu());
    return v;
  }();
  std::vector<K::AdamSlot> slots;
  optim::AdamHyper h;
  for (size_t i = 0; i < l.p.size(); ++i)
    slots.push_back({&l.p[i], &l.g[0][i], &l.st[i][0], &l.st[i][1], nullptr, optim::make_adam_step(h, 1)});
  Tensor wrong = zeros({5}, {DType::f32, gpu()});
  slots.back().exp_avg_sq = &wrong;
  CHECK_THROWS_WITH(K::adam_update_many(slots), doctest::Contains("'exp_avg_sq'"));
  slots.back().exp_avg_sq = &l.st.back()[1];
  slots.back().step = optim::make_adam_step({.amsgrad = true}, 1);  // amsgrad needs max_exp_avg_sq
  CHECK_THROWS_WITH(K::adam_update_many(slots), doctest::Contains("'max_exp_avg_sq' is missing"));
  Tensor f64_param = dev(l.p[0].cpu().to(DType::f64));
  slots.back() = {&f64_param, &l.g[0][0], &l.st[0][0], &l.st[0][1], nullptr, optim::make_adam_step(h, 1)};
  CHECK_THROWS_WITH(K::adam_update_many(slots), doctest::Contains("adam_update_many"));
  for (size_t i = 0; i < l.p.size(); ++i) CHECK_CLOSE(l.p[i].cpu(), before[i], 0, 0);
  CHECK_NOTHROW(K::adam_update_many({}));
}

// The optimizers over a (width 8) ResNet-50's 161 parameters: one list call per step, ceil(161 / K)
// launches instead of 161, and the same parameters as the CPU optimizer.
TEST_CASE("optimizer step over ResNet-50's 161 parameters: ceil(161 / K) launches, device == CPU") {
  struct Case {
    const char* name;
    int per_launch;
    std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor*>)> make;
  };
  auto group = [](std::vector<Tensor*> ps, double lr, double momentum) {
    optim::ParamGroup g;
    g.params = std::move(ps);
    g.lr = lr;
    g.weight_decay = 1e-4;
    g.momentum = momentum;
    return std::vector{g};
  };
  const Case cases[] = {
      {"sgd nesterov", cuda::kSgdTensorsPerLaunch,
       [&](auto ps) { return std::make_unique<optim::SGD>(group(ps, 0.05, 0.9), 0.0, true); }},
      {"adamw amsgrad", cuda::kAdamTensorsPerLaunch,
       [&](auto ps) { return std::make_unique<optim::Adam>(group(ps, 1e-3, 0.9), 0.999, 1e-8, true, true); }},
      {"rmsprop centered momentum", cuda::kRmspropTensorsPerLaunch,
       [&](auto ps) { return std::make_unique<optim::RMSprop>(group(ps, 1e-2, 0.9), 0.99, 1e-8, true); }}};
  for (const Case& c : cases) {
    CAPTURE(c.name);
    models::ResNet cpu_model(models::ResNetConfig{"resnet50", 8, 10, false, 1});
    models::ResNet dev_model(models::ResNetConfig{"resnet50", 8, 10, false, 1});
    dev_model.to(gpu());
    auto cp = cpu_model.named_parameters(), dp = dev_model.named_parameters();
    REQUIRE(cp.size() == 161);
    std::vector<Tensor*> cps, dps;
    for (size_t i = 0; i < cp.size(); ++i) {
      cps.push_back(cp[i].second);
      dps.push_back(dp[i].second);
    }
    auto copt = c.make(cps), dopt = c.make(dps);
    Rng r(5);
    for (int k = 0; k < 2; ++k) {
      for (size_t i = 0; i < cps.size(); ++i) {
        Tensor g = randn_cpu(cps[i]->shape(), r);
        cps[i]->set_grad(g);
        dps[i]->set_grad(dev(g));
      }
      copt->step();
#ifdef RTUNE_CUDA_SIM
      const uint64_t before = launches();
      dopt->step();
      // Step 1 also zero-fills the lazily created state; step 2 launches only the updates.
      if (k == 1) CHECK(launches() - before == (161 + uint64_t(c.per_launch) - 1) / uint64_t(c.per_launch));
#else
      dopt->step();
#endif
    }
    for (size_t i = 0; i < cps.size(); ++i) {
      CAPTURE(cp[i].first);
      CHECK_CLOSE(dps[i]->cpu(), *cps[i], kRtol32, kAtol32);
    }
  }
}

// clip_grad_norm on the device keeps every norm on the device (no host read in mid-step) and must
// scale exactly as the CPU path does: same per-tensor rounding to the gradients' dtype, same total,
// same coefficient. The per-tensor sums add in another order than the CPU's (a tree, not a loop):
// rounding to float32 hides that (bit-exact), in float64 it shows in the last bits (held to 1e-14).
// Sizes include an empty tensor; norm types 2, 1, inf and 3; clipping and not.
TEST_CASE("clip_grad_norm on the device equals the CPU (f32 bit for bit, f64 to 1e-14; norm 2, 1, inf, 3)") {
  const std::vector<int64_t> sizes{7, 1000, 0, 4097, 1, 33};
  for (DType dt : {DType::f32, DType::f64})
    for (double p : {2.0, 1.0, std::numeric_limits<double>::infinity(), 3.0})
      for (double max_norm : {0.5, 1e6}) {
        CAPTURE(dtype_name(dt));
        CAPTURE(p);
        CAPTURE(max_norm);
        Rng r(5);
        std::vector<Tensor> cpu_p, dev_p;
        for (int64_t n : sizes) {
          Tensor w = randn_cpu({n}, r, dt);
          cpu_p.push_back(w.clone().set_requires_grad(true));
          dev_p.push_back(dev(w).set_requires_grad(true));
          Tensor g = randn_cpu({n}, r, dt);
          cpu_p.back().set_grad(g.clone());
          dev_p.back().set_grad(dev(g));
        }
        std::vector<Tensor*> cp, dp;
        for (auto& t : cpu_p) cp.push_back(&t);
        for (auto& t : dev_p) dp.push_back(&t);
        optim::clip_grad_norm(cp, max_norm, p);
        optim::clip_grad_norm(dp, max_norm, p);
        for (size_t i = 0; i < sizes.size(); ++i) {
          if (dt == DType::f32) CHECK(dev_p[i].grad().cpu().to_vector<double>() == cpu_p[i].grad().to_vector<double>());
          else CHECK_CLOSE(dev_p[i].grad().cpu(), cpu_p[i].grad(), 1e-14, 1e-300);
        }
      }
}
