// Optimizer update rules vs PyTorch trajectories (tests/fixtures/training_reference.json and
// optim_extra_reference.json, made by torch.optim.{SGD,Adam,AdamW,RMSprop} with foreach=False defaults):
// float64 must match to 1e-12, float32 must stay within 1e-6 relative of the float64 reference. Every
// step runs through the CPU kernel the optimizers call (kernels::*_update_many), which applies the
// per-element rules of kernels/update_rules.h.
#include <string>
#include <type_traits>
#include <vector>

#include "engine/error.h"
#include "engine/tensor.h"
#include "kernels/ops.h"
#include "kernels/update_rules.h"
#include "tests/optim/reference.h"

using namespace rtune::optim;
using nlohmann::json;
using rtune::Tensor;

namespace {

// A 1-D CPU tensor of the vector's values (float or double); an empty vector is a missing state.
template <class T>
Tensor tensor_of(const std::vector<T>& v) {
  if (v.empty()) return {};
  const rtune::DType dt = std::is_same_v<T, float> ? rtune::DType::f32 : rtune::DType::f64;
  return rtune::from_vector(std::vector<double>(v.begin(), v.end()), {int64_t(v.size())}, dt);
}
template <class T>
void copy_back(const Tensor& t, std::vector<T>& v) {
  if (t.defined()) v = t.template to_vector<T>();
}
Tensor* slot(Tensor& t) { return t.defined() ? &t : nullptr; }

// One step of the CPU kernels on tensors holding these vectors; the vectors are updated in place.
template <class T>
void sgd_step(std::vector<T>& p, const std::vector<T>& g, std::vector<T>& buf, const SgdHyper& h, bool first_step) {
  Tensor tp = tensor_of(p), tg = tensor_of(g), tb = tensor_of(buf);
  rtune::kernels::sgd_update_many({{&tp, &tg, slot(tb), h, first_step}});
  copy_back(tp, p), copy_back(tb, buf);
}
template <class T>
void adam_step(std::vector<T>& p, const std::vector<T>& g, std::vector<T>& m, std::vector<T>& v, std::vector<T>& vmax,
               const AdamStep& s) {
  Tensor tp = tensor_of(p), tg = tensor_of(g), tm = tensor_of(m), tv = tensor_of(v), tx = tensor_of(vmax);
  rtune::kernels::adam_update_many({{&tp, &tg, slot(tm), slot(tv), slot(tx), s}});
  copy_back(tp, p), copy_back(tm, m), copy_back(tv, v), copy_back(tx, vmax);
}
template <class T>
void rmsprop_step(std::vector<T>& p, const std::vector<T>& g, std::vector<T>& sq, std::vector<T>& ga, std::vector<T>& buf,
                  const RmspropHyper& h) {
  Tensor tp = tensor_of(p), tg = tensor_of(g), ts = tensor_of(sq), ta = tensor_of(ga), tb = tensor_of(buf);
  rtune::kernels::rmsprop_update_many({{&tp, &tg, slot(ts), slot(ta), slot(tb), h}});
  copy_back(tp, p), copy_back(ts, sq), copy_back(ta, ga), copy_back(tb, buf);
}

json extra_reference() {
  std::ifstream f(RTUNE_SOURCE_DIR "/tests/fixtures/optim_extra_reference.json");
  REQUIRE_MESSAGE(f.good(), "missing tests/fixtures/optim_extra_reference.json");
  return json::parse(f);
}

// One optimizer configured from PyTorch's constructor kwargs, with its state for one parameter tensor.
template <class T>
struct Runner {
  std::string cls;
  SgdHyper sgd;
  AdamHyper adam;
  RmspropHyper rms;
  std::vector<T> s1, s2, s3;  // state buffers (momentum / exp_avg, exp_avg_sq, max_exp_avg_sq / ...)
  int64_t steps = 0;

  Runner(const std::string& c, const json& kw, size_t n) : cls(c), s1(n, T(0)), s2(n, T(0)), s3(n, T(0)) {
    // Poison the buffers the first SGD step must overwrite (PyTorch: buffer = grad on step 1).
    if (cls == "SGD") std::fill(s1.begin(), s1.end(), T(NAN));
    for (auto& [k, v] : kw.items()) {
      if (cls == "SGD") {
        if (k == "lr") sgd.lr = v;
        else if (k == "momentum") sgd.momentum = v;
        else if (k == "dampening") sgd.dampening = v;
        else if (k == "weight_decay") sgd.weight_decay = v;
        else if (k == "nesterov") sgd.nesterov = v;
        else if (k == "maximize") sgd.maximize = v;
        else FAIL("unknown SGD kwarg " << k);
      } else if (cls == "Adam" || cls == "AdamW") {
        if (k == "lr") adam.lr = v;
        else if (k == "betas") adam.beta1 = v[0], adam.beta2 = v[1];
        else if (k == "eps") adam.eps = v;
        else if (k == "weight_decay") adam.weight_decay = v;
        else if (k == "amsgrad") adam.amsgrad = v;
        else if (k == "maximize") adam.maximize = v;
        else FAIL("unknown Adam kwarg " << k);
      } else if (cls == "RMSprop") {
        if (k == "lr") rms.lr = v;
        else if (k == "alpha") rms.alpha = v;
        else if (k == "eps") rms.eps = v;
        else if (k == "weight_decay") rms.weight_decay = v;
        else if (k == "momentum") rms.momentum = v;
        else if (k == "centered") rms.centered = v;
        else if (k == "maximize") rms.maximize = v;
        else FAIL("unknown RMSprop kwarg " << k);
      } else {
        FAIL("unknown optimizer class " << cls);
      }
    }
    if (cls == "AdamW") {
      adam.decoupled = true;
      if (!kw.contains("weight_decay")) adam.weight_decay = 1e-2;  // AdamW's default
    }
  }

  void step(std::vector<T>& p, const std::vector<T>& g) {
    ++steps;
    if (cls == "SGD") sgd_step(p, g, s1, sgd, steps == 1);
    else if (cls == "RMSprop") rmsprop_step(p, g, s1, s2, s3, rms);
    else adam_step(p, g, s1, s2, s3, make_adam_step(adam, steps));
  }
};

template <class T>
std::vector<T> as_vec(const json& j) {
  std::vector<T> v;
  for (double x : j) v.push_back(T(x));
  return v;
}

// Runs every optimizer of `ref` (p0, grads, optimizers{name: class, kwargs, params_after_each_step}).
template <class T>
void check_trajectories(const json& ref, double atol, double rtol, const char* tag) {
  const auto grads = ref.at("grads");
  for (auto& [name, o] : ref.at("optimizers").items()) {
    SUBCASE((std::string(tag) + " " + name).c_str()) {
      auto p = as_vec<T>(ref.at("p0"));
      Runner<T> r(o.at("class"), o.at("kwargs"), p.size());
      const auto& traj = o.at("params_after_each_step");
      REQUIRE(traj.size() == grads.size());
      for (size_t s = 0; s < grads.size(); ++s) {
        r.step(p, as_vec<T>(grads[s]));
        CHECK_CLOSE_VEC(p, as_vec<double>(traj[s]), atol, rtol, fmt::format("{} {} step {}", tag, name, s + 1));
      }
    }
  }
}

}  // namespace

TEST_CASE("optimizer trajectories: float64 == PyTorch (training_reference.json)") {
  check_trajectories<double>(rtune::test::training_reference(), 1e-12, 1e-12, "f64");
}

TEST_CASE("optimizer trajectories: float32 within 1e-6 relative of the float64 reference") {
  // atol 1e-7 covers elements that pass near zero, where a relative bound alone is meaningless.
  check_trajectories<float>(rtune::test::training_reference(), 1e-7, 1e-6, "f32");
}

TEST_CASE("optimizer trajectories: float64 == PyTorch (optim_extra_reference.json)") {
  check_trajectories<double>(extra_reference(), 1e-12, 1e-12, "f64");
}

TEST_CASE("optimizer trajectories: float32 == PyTorch float32 (optim_extra_reference.json)") {
  // PyTorch's own float32 run of the same configurations. Its vectorised CPU kernels fuse a + alpha*b
  // into one FMA (the scalar tail does not), so results differ by a few float ulps, which cancellation
  // near zero can turn into a larger relative difference: hence the small atol.
  const auto ref = extra_reference();
  json f32 = ref;
  f32["p0"] = ref.at("float32").at("p0");
  f32["grads"] = ref.at("float32").at("grads");
  f32["optimizers"] = ref.at("float32").at("optimizers");
  check_trajectories<float>(f32, 1e-7, 1e-6, "torch-f32");
}

TEST_CASE("adam: make_adam_step bias corrections") {
  AdamHyper h;
  h.lr = 0.5;
  const auto s3 = make_adam_step(h, 3);
  CHECK(s3.step_size == doctest::Approx(0.5 / (1 - 0.9 * 0.9 * 0.9)).epsilon(1e-15));
  CHECK(s3.bias_correction2_sqrt == doctest::Approx(std::sqrt(1 - 0.999 * 0.999 * 0.999)).epsilon(1e-15));
}

TEST_CASE("sgd: momentum buffer is the gradient on the first step, blended afterwards") {
  SgdHyper h{.lr = 1.0, .momentum = 0.5, .dampening = 0.25};
  double p = 0, buf = NAN;
  sgd_update(p, 2.0, buf, h, true);
  CHECK(buf == 2.0);  // not (1 - dampening) * g
  CHECK(p == -2.0);
  sgd_update(p, 4.0, buf, h, false);
  CHECK(buf == 0.5 * 2.0 + 0.75 * 4.0);
  CHECK(p == -2.0 - 4.0);
}

TEST_CASE("maximize == minimizing the negated gradient") {
  const std::vector<double> g0{0.3, -1.2, 2.5};
  std::vector<double> gneg;
  for (double x : g0) gneg.push_back(-x);
  AdamHyper h{.lr = 0.1, .weight_decay = 0.1, .amsgrad = true};
  AdamHyper hm = h;
  hm.maximize = true;
  std::vector<double> p1{1, 2, 3}, p2 = p1, a(3), b(3), c(3), d(3), e(3), f(3);
  for (int s = 1; s <= 3; ++s) {
    adam_step(p1, gneg, a, b, c, make_adam_step(h, s));
    adam_step(p2, g0, d, e, f, make_adam_step(hm, s));
  }
  CHECK_CLOSE_VEC(p2, p1, 0.0, 0.0, "adam maximize");
}

TEST_CASE("the CPU kernels reject mismatched or missing state") {
  std::vector<double> p(4), g(4), m(4), v(3), empty;
  CHECK_THROWS_AS(adam_step(p, g, m, v, empty, make_adam_step({}, 1)), rtune::Error);
  CHECK_THROWS_WITH_AS(sgd_step(p, g, empty, SgdHyper{.momentum = 0.9}, true),
                       doctest::Contains("momentum_buf"), rtune::Error);
  CHECK_NOTHROW(sgd_step(p, g, empty, SgdHyper{}, true));  // no momentum: no buffer needed
  CHECK_THROWS_AS(rmsprop_step(p, g, m, empty, empty, RmspropHyper{.centered = true}), rtune::Error);
  CHECK_THROWS_AS(adam_step(p, g, m, m, empty, AdamStep{}), rtune::Error);  // step 0
  AdamHyper ams{.amsgrad = true};
  CHECK_THROWS_AS(adam_step(p, g, m, m, empty, make_adam_step(ams, 1)), rtune::Error);
}

TEST_CASE("the CPU kernels: the OpenMP path equals the element rule") {
  // Big enough for the parallel branch; every element checked against a serial call of the rule.
  const size_t n = (size_t(1) << 15) + 17;
  std::vector<float> p(n), g(n), s1(n), s2(n), s3(n);
  for (size_t i = 0; i < n; ++i) p[i] = float(std::sin(0.1 * i)), g[i] = float(std::cos(0.37 * i));
  auto pr = p;
  std::vector<float> r1(n), r2(n), r3(n);
  RmspropHyper h{.lr = 0.01, .weight_decay = 0.1, .momentum = 0.9, .centered = true};
  for (int s = 0; s < 2; ++s) {
    rmsprop_step(p, g, s1, s2, s3, h);
    for (size_t i = 0; i < n; ++i) rmsprop_update(pr[i], g[i], r1[i], r2[i], r3[i], h);
  }
  CHECK_CLOSE_VEC(p, pr, 0.0, 0.0, "rmsprop parallel vs serial");
}
