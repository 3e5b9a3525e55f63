// LR schedulers vs PyTorch's torch.optim.lr_scheduler sequences (training_reference.json and
// optim_extra_reference.json): float64 to 1e-12, OneCycle momentum/beta1 cycle included; exact resume
// through state()/load_state(); spec-string parsing and its errors.
#include <memory>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/sched/schedulers.h"
#include "engine/sched/spec.h"
#include "tests/optim/reference.h"

using namespace rtune::sched;
using nlohmann::json;

namespace {

constexpr double kTol = 1e-12;

json extra_reference() {
  std::ifstream f(RTUNE_SOURCE_DIR "/tests/fixtures/optim_extra_reference.json");
  REQUIRE_MESSAGE(f.good(), "missing tests/fixtures/optim_extra_reference.json");
  return json::parse(f);
}

// The LR of group `g` before each step (what PyTorch's fixture records), stepping with the metrics if any.
std::vector<std::vector<double>> run(Scheduler& s, size_t steps, const std::vector<double>* metrics = nullptr,
                                     std::vector<double>* momentum = nullptr) {
  std::vector<std::vector<double>> out;
  for (size_t i = 0; i < steps; ++i) {
    out.push_back(s.lrs());
    if (momentum) momentum->push_back(s.momentum().at(0));
    if (i + 1 == steps) break;
    if (metrics) s.step((*metrics)[i]);
    else s.step();
  }
  return out;
}

std::vector<double> column(const std::vector<std::vector<double>>& rows, size_t g) {
  std::vector<double> c;
  for (const auto& r : rows) c.push_back(r.at(g));
  return c;
}

std::vector<double> doubles(const json& j) { return j.get<std::vector<double>>(); }

}  // namespace

TEST_CASE("schedulers reproduce training_reference.json") {
  const auto& ref = rtune::test::training_reference().at("schedulers");
  struct Case {
    const char* key;
    const char* spec;
    double lr;
  };
  const Case cases[] = {
      {"step_5_0.5_lr0.001", "step:step_size=5,gamma=0.5", 0.001},
      {"multistep_3_7_0.1", "multistep:milestones=[3,7],gamma=0.1", 0.1},
      {"cosine_T10", "cosine:t_max=10", 0.1},
      {"cosine_T10_eta0.001", "cosine:t_max=10,eta_min=0.001", 0.1},
      {"onecycle_max1e-4_e10_spe7", "onecycle:max_lr=1e-4,epochs=10,steps_per_epoch=7", 0.1},
      {"onecycle_max0.01_total50_linear", "onecycle:max_lr=0.01,total_steps=50,anneal=linear,pct_start=0.25", 0.1},
      {"linear_warmup_0.1_5", "linear:start_factor=0.1,total_iters=5", 0.1},
      {"exponential_0.9", "exponential:gamma=0.9", 0.1},
  };
  for (const auto& c : cases) {
    SUBCASE(c.key) {
      const std::vector<double> base{c.lr};
      auto s = make_scheduler(c.spec, base);
      const auto want = doubles(ref.at(c.key));
      // Fixtures record the LR before each of N steps; PyTorch's loop also stepped after the last one.
      auto got = run(*s, want.size() + 1);
      got.pop_back();
      CHECK_CLOSE_VEC(column(got, 0), want, kTol, kTol, c.key);
    }
  }
  SUBCASE("onecycle momentum cycle") {
    const std::vector<double> base{0.1};
    auto s = make_scheduler("onecycle:max_lr=1e-4,epochs=10,steps_per_epoch=7", base);
    CHECK(s->step_unit() == StepUnit::batch);
    std::vector<double> mom;
    run(*s, 70, nullptr, &mom);
    CHECK_CLOSE_VEC(mom, doubles(ref.at("onecycle_max1e-4_e10_spe7_momentum")), kTol, kTol, "onecycle momentum");
  }
  SUBCASE("plateau") {
    const auto& p = ref.at("plateau_min_0.5_p2");
    const std::vector<double> base{1e-3};
    auto s = make_scheduler("plateau:mode=min,factor=0.5,patience=2", base);
    const auto metrics = doubles(p.at("metrics"));
    auto got = run(*s, metrics.size(), &metrics);
    CHECK_CLOSE_VEC(column(got, 0), doubles(p.at("lrs")), kTol, kTol, "plateau");
  }
}

TEST_CASE("schedulers reproduce optim_extra_reference.json (groups, restarts, three-phase, plateau options)") {
  const auto ref = extra_reference().at("schedulers");
  struct Case {
    const char* key;
    const char* spec;
    bool momentum;
  };
  const Case cases[] = {
      {"cosine_T4_eta0.01_30", "cosine:t_max=4,eta_min=0.01", false},
      {"multistep_dup_2_2_5", "multistep:milestones=[5,2,2],gamma=0.5", false},
      {"step_3_0.7", "step:step_size=3,gamma=0.7", false},
      {"linear_0.25_to_0.5_4", "linear:start_factor=0.25,end_factor=0.5,total_iters=4", false},
      {"exponential_0.5_2groups", "exponential:gamma=0.5", false},
      {"onecycle_three_phase_cos_40",
       "onecycle:max_lr=[0.1,0.05],total_steps=40,three_phase=true,div_factor=10,final_div_factor=100,pct_start=0.25",
       true},
      {"onecycle_adam_beta1_linear_30",
       "onecycle:max_lr=0.02,total_steps=30,anneal_strategy=linear,base_momentum=0.8,max_momentum=0.9", true},
      {"onecycle_no_momentum_20", "onecycle:max_lr=0.3,total_steps=20,cycle_momentum=false", false},
      {"plateau_min_abs_cooldown",
       "plateau:mode=min,factor=0.5,patience=1,threshold=0.05,threshold_mode=abs,cooldown=2,min_lr=[0.02,0]", false},
      {"plateau_max_rel_eps", "plateau:mode=max,factor=0.1,patience=0,threshold=0.1,min_lr=1e-4,eps=1e-3", false},
  };
  for (const auto& c : cases) {
    SUBCASE(c.key) {
      const auto& r = ref.at(c.key);
      const auto want = r.at("lrs").get<std::vector<std::vector<double>>>();
      std::vector<double> base;  // the generator gives group i the LR 0.1 * (i + 1)
      for (size_t g = 0; g < want[0].size(); ++g) base.push_back(0.1 * double(g + 1));
      if (std::string(c.key) == "plateau_max_rel_eps") base = {0.05};
      auto s = make_scheduler(c.spec, base);
      std::vector<double> metrics, mom;
      if (r.contains("metrics")) metrics = doubles(r.at("metrics"));
      auto got = run(*s, want.size(), metrics.empty() ? nullptr : &metrics, c.momentum ? &mom : nullptr);
      for (size_t g = 0; g < base.size(); ++g)
        CHECK_CLOSE_VEC(column(got, g), column(want, g), kTol, kTol, fmt::format("{} group {}", c.key, g));
      if (c.momentum) CHECK_CLOSE_VEC(mom, doubles(r.at("momentum")), kTol, kTol, fmt::format("{} momentum", c.key));
      else CHECK(s->momentum().empty());
    }
  }
}

TEST_CASE("state()/load_state(): resume through JSON text equals an uninterrupted run") {
  const std::vector<double> base{0.1, 0.02};
  const char* specs[] = {"step:step_size=3,gamma=0.5",
                         "multistep:milestones=[2,5,9]",
                         "cosine:t_max=4,eta_min=0.001",
                         "linear:start_factor=0.2,end_factor=0.9,total_iters=6",
                         "exponential:gamma=0.93",
                         "onecycle:max_lr=[0.5,0.1],total_steps=25,three_phase=true",
                         "plateau:patience=1,factor=0.5,cooldown=1,mode=max"};
  std::vector<double> metrics;
  for (int i = 0; i < 20; ++i) metrics.push_back(std::sin(0.7 * i) + 0.01 * i);
  for (const char* spec : specs) {
    SUBCASE(spec) {
      auto full = make_scheduler(spec, base);
      auto first = make_scheduler(spec, base);
      auto step = [&](Scheduler& s, int i) { s.needs_metric() ? s.step(metrics[i]) : s.step(); };
      for (int i = 0; i < 7; ++i) step(*full, i), step(*first, i);
      const std::string saved = first->state().dump();
      auto resumed = make_scheduler(spec, base);
      resumed->load_state(json::parse(saved));
      CHECK(resumed->last_epoch() == 7);
      for (int i = 7; i < 20; ++i) {
        step(*full, i), step(*resumed, i);
        CHECK_CLOSE_VEC(resumed->lrs(), full->lrs(), 0.0, 0.0, fmt::format("{} after step {}", spec, i + 1));
        CHECK_CLOSE_VEC(resumed->momentum(), full->momentum(), 0.0, 0.0, fmt::format("{} momentum", spec));
      }
    }
  }
  SUBCASE("plateau keeps its infinite 'best' through JSON") {
    auto s = make_scheduler("plateau:patience=3", base);
    auto t = make_scheduler("plateau:patience=3", base);
    t->load_state(json::parse(s->state().dump()));
    t->step(5.0);  // 5 < inf: an improvement, so no bad epoch
    CHECK(dynamic_cast<ReduceLROnPlateau&>(*t).num_bad_epochs() == 0);
    CHECK(dynamic_cast<ReduceLROnPlateau&>(*t).best() == 5.0);
  }
}

TEST_CASE("load_state rejects state from another scheduler, configuration or group count") {
  const std::vector<double> one{0.1}, two{0.1, 0.2};
  const auto st = make_scheduler("step:step_size=3", one)->state();
  CHECK_THROWS_WITH_AS(make_scheduler("exponential:gamma=0.9", one)->load_state(st), doctest::Contains("step"),
                       rtune::Error);
  CHECK_THROWS_WITH_AS(make_scheduler("step:step_size=4", one)->load_state(st), doctest::Contains("config"),
                       rtune::Error);
  CHECK_THROWS_WITH_AS(make_scheduler("step:step_size=3", two)->load_state(st), doctest::Contains("groups"),
                       rtune::Error);
  json bad = st;
  bad.erase("lrs");
  CHECK_THROWS_AS(make_scheduler("step:step_size=3", one)->load_state(bad), rtune::Error);
  CHECK_THROWS_AS(make_scheduler("step:step_size=3", one)->load_state(json::array()), rtune::Error);
}

TEST_CASE("spec strings: defaults, context and the properties the trainer reads") {
  const std::vector<double> base{0.4};
  auto lin = make_scheduler("linear", base);  // PyTorch defaults: 1/3 -> 1 over 5
  CHECK(lin->lrs()[0] == doctest::Approx(0.4 / 3).epsilon(1e-15));
  CHECK(lin->config() == json{{"start_factor", 1.0 / 3}, {"end_factor", 1.0}, {"total_iters", 5}});
  CHECK(lin->step_unit() == StepUnit::epoch);

  auto cos = make_scheduler("cosine", base, {.epochs = 8});
  CHECK(cos->config().at("t_max") == 8);

  auto oc = make_scheduler("onecycle", base, {.epochs = 3, .steps_per_epoch = 5});
  CHECK(dynamic_cast<OneCycleLR&>(*oc).total_steps() == 15);
  CHECK(oc->lrs()[0] == doctest::Approx(0.4 / 25).epsilon(1e-15));  // max_lr defaults to the base LR
  CHECK(oc->momentum() == std::vector<double>{0.95});
  for (int i = 0; i < 15; ++i) oc->step();
  CHECK_THROWS_WITH_AS(oc->step(), doctest::Contains("total_steps"), rtune::Error);

  auto pl = make_scheduler(" plateau : patience = 2 , factor = 0.5 ", base);
  CHECK(pl->needs_metric());
  CHECK_THROWS_AS(pl->step(), rtune::Error);
  CHECK_THROWS_AS(lin->step(1.0), rtune::Error);
  CHECK(pl->kind() == "plateau");
}

TEST_CASE("bad specs are rejected with a clear rtune::Error") {
  const std::vector<double> base{0.1};
  struct Bad {
    const char* spec;
    const char* says;
  };
  const Bad bad[] = {
      {"", "missing the scheduler name"},
      {":gamma=0.1", "missing the scheduler name"},
      {"warmup:x=1", "unknown scheduler 'warmup'"},
      {"step", "needs 'step_size'"},
      {"step:step_size=0", "step_size must be >= 1"},
      {"step:step_size=7.5", "must be an integer"},
      {"step:step_size=7,gamma=abc", "must be a finite number"},
      {"step:step_size=7,gamma=inf", "must be a finite number"},
      {"step:step_size=7,step_size=8", "given twice"},
      {"step:step_size=7,gama=0.1", "unknown key 'gama'"},
      {"step:step_size", "expected key=value"},
      {"step:step_size=", "empty key or value"},
      {"step:step_size=7,", "expected key=value"},
      {"multistep:milestones=[3,7", "unbalanced"},
      {"multistep:milestones=[]", "is empty"},
      {"multistep:milestones=[0,3]", "milestones must be >= 1"},
      {"cosine:eta_min=0.1", "needs 't_max'"},
      {"exponential", "needs 'gamma'"},
      {"exponential:gamma=-1", "gamma must be > 0"},
      {"linear:start_factor=0", "start_factor must be in (0, 1]"},
      {"linear:end_factor=1.5", "end_factor must be in [0, 1]"},
      {"onecycle:max_lr=0.1", "needs total_steps"},
      {"onecycle:max_lr=0.1,total_steps=10,epochs=2", "not both"},
      {"onecycle:max_lr=0.1,total_steps=10,anneal=cosine", "must be one of cos|linear"},
      {"onecycle:max_lr=0.1,total_steps=10,pct_start=1.5", "pct_start must be in [0, 1]"},
      {"onecycle:max_lr=0.1,total_steps=10,three_phase=yes", "true/false"},
      {"onecycle:max_lr=[0.1,0.2],total_steps=10", "max_lr has 2 values"},
      {"onecycle:max_lr=0.1,total_steps=10,pct_start=0.1", "empty"},
      {"plateau:mode=up", "must be one of min|max"},
      {"plateau:factor=1.0", "factor must be in [0, 1)"},
      {"plateau:patience=-1", "patience must be >= 0"},
      {"plateau:threshold_mode=relative", "must be one of rel|abs"},
      {"plateau:min_lr=[0.1,0.2]", "min_lr has 2 values"},
  };
  for (const auto& b : bad) {
    CAPTURE(b.spec);
    CHECK_THROWS_WITH_AS(make_scheduler(b.spec, base), doctest::Contains(b.says), rtune::Error);
  }
  CHECK_THROWS_WITH_AS(make_scheduler("step:step_size=7", std::vector<double>{}), doctest::Contains("at least one"),
                       rtune::Error);
}
