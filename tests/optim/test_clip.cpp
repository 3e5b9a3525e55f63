// clip_grad_norm_ / clip_grad_value_ vs torch.nn.utils (training_reference.json "clip" and
// optim_extra_reference.json: norm types 2, 1, 3, inf, a no-op clip, float32), through what the trainer
// calls (optim::clip_grad_norm / clip_grad_value on the parameters' gradients, CPU kernels), and the
// norm and coefficient rules of kernels/update_rules.h that the CPU and CUDA kernels share.
#include <type_traits>
#include <vector>

#include "engine/error.h"
#include "engine/optim/optimizer.h"
#include "kernels/ops.h"
#include "kernels/update_rules.h"
#include "tests/optim/reference.h"

using namespace rtune::optim;
using nlohmann::json;
using rtune::Tensor;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// CPU parameters of dtype T whose gradients hold the given vectors.
template <class T>
struct Params {
  std::vector<Tensor> tensors;
  std::vector<Tensor*> ptrs;
  explicit Params(const json& grads) {
    const rtune::DType dt = std::is_same_v<T, float> ? rtune::DType::f32 : rtune::DType::f64;
    for (const auto& g : grads) {
      std::vector<double> v = g.get<std::vector<double>>();
      Tensor p = rtune::zeros({int64_t(v.size())}, {dt});
      p.set_grad(rtune::from_vector(v, {int64_t(v.size())}, dt));
      tensors.push_back(p);
    }
    for (Tensor& t : tensors) ptrs.push_back(&t);
  }
  std::vector<std::vector<double>> grads() const {
    std::vector<std::vector<double>> out;
    for (const Tensor& t : tensors) out.push_back(t.grad().to_vector<double>());
    return out;
  }
  // The total norm as clip_grad_norm_ forms it: per-tensor norms rounded to T, combined, rounded to T.
  double total_norm(double p) const {
    std::vector<Tensor> gs;
    for (const Tensor& t : tensors) gs.push_back(t.grad());
    const int kind = norm_kind(p);
    double acc = 0;
    for (double n : rtune::kernels::norms(gs, p)) acc = norm_add(acc, double(T(n)), kind, p);
    return double(T(norm_finish(acc, kind, p)));
  }
};

std::vector<std::vector<double>> vectors(const json& j) {
  std::vector<std::vector<double>> out;
  for (const auto& t : j) out.push_back(t.get<std::vector<double>>());
  return out;
}

}  // namespace

TEST_CASE("clip_grad_norm_(max_norm=1) and clip_grad_value_(0.5) == PyTorch (training_reference.json)") {
  const auto& c = rtune::test::training_reference().at("clip");
  Params<double> g(c.at("grads"));
  const double total = g.total_norm(2.0);
  clip_grad_norm(g.ptrs, 1.0);
  const double want = c.at("norm_max_1.0").at("total_norm");
  CHECK_MESSAGE(std::abs(total - want) <= 1e-12 + 1e-12 * want, fmt::format("total {:.17g} vs {:.17g}", total, want));
  const auto clipped = vectors(c.at("norm_max_1.0").at("clipped"));
  const auto got = g.grads();
  for (size_t i = 0; i < got.size(); ++i) CHECK_CLOSE_VEC(got[i], clipped[i], 1e-12, 1e-12, fmt::format("norm tensor {}", i));

  Params<double> v(c.at("grads"));
  clip_grad_value(v.ptrs, 0.5);
  const auto vref = vectors(c.at("value_0.5").at("clipped"));
  const auto vgot = v.grads();
  for (size_t i = 0; i < vgot.size(); ++i) CHECK_CLOSE_VEC(vgot[i], vref[i], 0.0, 0.0, fmt::format("value tensor {}", i));
}

TEST_CASE("clip_grad_norm_: norm types 2, 1, 3, inf, no-op clip, float64 and float32 (optim_extra_reference.json)") {
  std::ifstream f(RTUNE_SOURCE_DIR "/tests/fixtures/optim_extra_reference.json");
  REQUIRE(f.good());
  const auto ref = json::parse(f).at("clip");
  for (const auto& c : ref.at("norm")) {
    const double max_norm = c.at("max_norm");
    const double nt = c.at("norm_type").is_string() ? kInf : c.at("norm_type").get<double>();
    const bool f64 = c.at("dtype") == "float64";
    // float32: PyTorch reduces in float, we accumulate in double: a few float ulps apart.
    const double tol = f64 ? 1e-12 : 1e-6;
    const auto what = fmt::format("{} max_norm {} norm_type {}", c.at("dtype").get<std::string>(), max_norm, nt);
    CAPTURE(what);
    const auto want = vectors(c.at("clipped"));
    double total = 0;
    std::vector<std::vector<double>> got;
    if (f64) {
      Params<double> g(ref.at("grads"));
      total = g.total_norm(nt);
      clip_grad_norm(g.ptrs, max_norm, nt);
      got = g.grads();
    } else {
      Params<float> g(ref.at("grads"));
      total = g.total_norm(nt);
      clip_grad_norm(g.ptrs, max_norm, nt);
      got = g.grads();
    }
    const double tw = c.at("total_norm");
    CHECK_MESSAGE(std::abs(total - tw) <= tol * tw, fmt::format("{}: total {:.17g} vs {:.17g}", what, total, tw));
    for (size_t i = 0; i < got.size(); ++i) CHECK_CLOSE_VEC(got[i], want[i], tol, tol, fmt::format("{} tensor {}", what, i));
  }
}

TEST_CASE("clip rules: norm accumulation, combining, the coefficient") {
  auto norm = [](std::vector<double> xs, double p) {
    const int kind = norm_kind(p);
    double acc = 0;
    for (double x : xs) acc = norm_add(acc, x, kind, p);
    return norm_finish(acc, kind, p);
  };
  CHECK(norm({3, -4}, 2.0) == 5.0);
  CHECK(norm({3, -4}, 1.0) == 7.0);
  CHECK(norm({3, -4}, kInf) == 4.0);
  CHECK(std::isnan(norm({1, NAN, 5}, kInf)));  // NaN wins the max, as torch's
  CHECK(norm({5.0, 12.0}, 2.0) == 13.0);       // combining per-tensor norms is the same rule
  CHECK(clip_coef<double>(13.0, 1.0) == 1.0 / (13.0 + 1e-6));
  CHECK(clip_coef<double>(0.5, 1.0) == 1.0);  // clamped: never scales up
  CHECK(std::isnan(clip_coef<double>(NAN, 1.0)));
  CHECK(clamp_value(2.0f, -1.0f, 1.0f) == 1.0f);
  CHECK(std::isnan(clamp_value(float(NAN), -1.0f, 1.0f)));
}

TEST_CASE("clip: non-finite norms, parameters without gradients and bad arguments") {
  Params<double> g(json::parse("[[1.0, 2.0], [2.0]]"));
  g.tensors[0].grad().data<double>()[1] = INFINITY;
  CHECK(std::isinf(g.total_norm(2.0)));
  clip_grad_norm(g.ptrs, 1.0);  // PyTorch scales by 1/(inf+1e-6) = 0 here: 1 -> 0, inf -> NaN, 2 -> 0
  const auto g0 = g.tensors[0].grad().to_vector<double>();
  CHECK(g0[0] == 0.0);
  CHECK(std::isnan(g0[1]));
  CHECK(g.tensors[1].grad().to_vector<double>()[0] == 0.0);

  Tensor bare = rtune::zeros({3});  // no gradient: skipped, as PyTorch skips p.grad is None
  std::vector<Tensor*> none{&bare};
  CHECK_NOTHROW(clip_grad_norm(none, 1.0));
  Params<float> h(json::parse("[[0.5, 1.0, -3.0]]"));
  h.tensors[0].grad().data<float>()[1] = NAN;
  clip_grad_value(h.ptrs, 1.0);
  const auto v = h.tensors[0].grad().to_vector<float>();
  CHECK(v[0] == 0.5f);
  CHECK(std::isnan(v[1]));
  CHECK(v[2] == -1.0f);
  CHECK_THROWS_AS(clip_grad_value(h.ptrs, -1.0), rtune::Error);
  CHECK_THROWS_AS(clip_grad_norm(h.ptrs, 1.0, 0.0), rtune::Error);
  CHECK_THROWS_AS(clip_grad_norm(h.ptrs, -1.0), rtune::Error);
}
