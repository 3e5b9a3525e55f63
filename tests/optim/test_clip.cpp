// clip_grad_norm_ / clip_grad_value_ vs torch.nn.utils (training_reference.json "clip" and
// optim_extra_reference.json: norm types 2, 1, 3, inf, a no-op clip, float32).
#include <vector>

#include "engine/error.h"
#include "engine/optim/clip.h"
#include "tests/optim/reference.h"

using namespace rtune::optim;
using nlohmann::json;

namespace {

template <class T>
std::vector<std::vector<T>> tensors(const json& j) {
  std::vector<std::vector<T>> out;
  for (const auto& t : j) {
    out.emplace_back();
    for (double x : t) out.back().push_back(T(x));
  }
  return out;
}

template <class T>
std::vector<std::span<T>> spans(std::vector<std::vector<T>>& ts) {
  return {ts.begin(), ts.end()};
}

}  // namespace

TEST_CASE("clip_grad_norm_(max_norm=1) and clip_grad_value_(0.5) == PyTorch (training_reference.json)") {
  const auto& c = rtune::test::training_reference().at("clip");
  auto g = tensors<double>(c.at("grads"));
  const double total = clip_grad_norm_(spans(g), 1.0);
  const double want = c.at("norm_max_1.0").at("total_norm");
  CHECK_MESSAGE(std::abs(total - want) <= 1e-12 + 1e-12 * want, fmt::format("total {:.17g} vs {:.17g}", total, want));
  const auto clipped = tensors<double>(c.at("norm_max_1.0").at("clipped"));
  for (size_t i = 0; i < g.size(); ++i) CHECK_CLOSE_VEC(g[i], clipped[i], 1e-12, 1e-12, fmt::format("norm tensor {}", i));

  auto v = tensors<double>(c.at("grads"));
  clip_grad_value_(spans(v), 0.5);
  const auto vref = tensors<double>(c.at("value_0.5").at("clipped"));
  for (size_t i = 0; i < v.size(); ++i) CHECK_CLOSE_VEC(v[i], vref[i], 0.0, 0.0, fmt::format("value tensor {}", i));
}

TEST_CASE("clip_grad_norm_: norm types 2, 1, 3, inf, no-op clip, float64 and float32 (optim_extra_reference.json)") {
  std::ifstream f(RTUNE_SOURCE_DIR "/tests/fixtures/optim_extra_reference.json");
  REQUIRE(f.good());
  const auto ref = json::parse(f).at("clip");
  for (const auto& c : ref.at("norm")) {
    const double max_norm = c.at("max_norm");
    const double nt = c.at("norm_type").is_string() ? kInfNorm : c.at("norm_type").get<double>();
    const bool f64 = c.at("dtype") == "float64";
    // float32: PyTorch reduces in float, we accumulate in double: a few float ulps apart.
    const double tol = f64 ? 1e-12 : 1e-6;
    const auto what = fmt::format("{} max_norm {} norm_type {}", c.at("dtype").get<std::string>(), max_norm, nt);
    CAPTURE(what);
    const auto want = tensors<double>(c.at("clipped"));
    double total = 0;
    std::vector<std::vector<double>> got;
    if (f64) {
      auto g = tensors<double>(ref.at("grads"));
      total = clip_grad_norm_(spans(g), max_norm, nt);
      got = g;
    } else {
      auto g = tensors<float>(ref.at("grads"));
      total = clip_grad_norm_(spans(g), max_norm, nt);
      for (auto& t : g) got.emplace_back(t.begin(), t.end());
    }
    const double tw = c.at("total_norm");
    CHECK_MESSAGE(std::abs(total - tw) <= tol * tw, fmt::format("{}: total {:.17g} vs {:.17g}", what, total, tw));
    for (size_t i = 0; i < got.size(); ++i) CHECK_CLOSE_VEC(got[i], want[i], tol, tol, fmt::format("{} tensor {}", what, i));
  }
}

TEST_CASE("clip pieces: grad_norm, combine_norms, clip_coefficient") {
  const std::vector<double> a{3, -4}, b{12};
  CHECK(grad_norm(std::span<const double>(a)) == 5.0);
  CHECK(grad_norm(std::span<const double>(a), 1.0) == 7.0);
  CHECK(grad_norm(std::span<const double>(a), kInfNorm) == 4.0);
  const std::vector<double> norms{5.0, 12.0};
  CHECK(combine_norms(norms) == 13.0);
  CHECK(clip_coefficient(13.0, 1.0) == 1.0 / (13.0 + 1e-6));
  CHECK(clip_coefficient(0.5, 1.0) == 1.0);  // clamped: never scales up
  CHECK(std::isnan(clip_coefficient(NAN, 1.0)));
}

TEST_CASE("clip: non-finite norms, empty input and bad arguments") {
  std::vector<std::vector<double>> g{{1.0, INFINITY}, {2.0}};
  CHECK_THROWS_WITH_AS(clip_grad_norm_(spans(g), 1.0, 2.0, true), doctest::Contains("cannot be clipped"),
                       rtune::Error);
  CHECK(g[0][0] == 1.0);  // nothing scaled when it throws
  const double total = clip_grad_norm_(spans(g), 1.0);  // PyTorch scales by 1/(inf+1e-6) = 0 here
  CHECK(std::isinf(total));
  CHECK(g[1][0] == 0.0);

  std::vector<std::vector<float>> none;
  CHECK(clip_grad_norm_(spans(none), 1.0) == 0.0);
  std::vector<std::vector<float>> h{{0.5f, NAN, -3.0f}};
  clip_grad_value_(spans(h), 1.0);
  CHECK(h[0][0] == 0.5f);
  CHECK(std::isnan(h[0][1]));
  CHECK(h[0][2] == -1.0f);
  CHECK_THROWS_AS(clip_grad_value_(spans(h), -1.0), rtune::Error);
  CHECK_THROWS_AS(clip_grad_norm_(spans(h), 1.0, 0.0), rtune::Error);
  CHECK_THROWS_AS(clip_grad_norm_(spans(h), -1.0), rtune::Error);
}
