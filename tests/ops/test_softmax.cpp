// softmax, log_softmax and cross_entropy (kernels/cpu/softmax.cpp, kernels/cuda/softmax.cu): values
// against PyTorch's numbers in tests/fixtures/training_reference.json (float64 and float32); float64
// gradient checks; with a CUDA backend, the device against the CPU oracle (reductions in double:
// 1e-6) and an out-of-range target reported at the next fence.
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/functional.h"
#include "kernels/ops.h"
#include "tests/ops/ops_test_util.h"

using namespace rtune;
using namespace rtune::opstest;

namespace {
nlohmann::json training_reference() {
  std::ifstream f(test::fixture("training_reference.json"));
  REQUIRE(f.good());
  return nlohmann::json::parse(f);
}
Tensor matrix(const nlohmann::json& rows) {
  std::vector<double> v;
  for (auto& r : rows)
    for (auto& x : r) v.push_back(x.get<double>());
  return from_vector(v, {int64_t(rows.size()), int64_t(rows[0].size())}, DType::f64);
}
}  // namespace

// ----------------------------------------------------------------------------------------- forward

TEST_CASE("cross_entropy and softmax equal PyTorch (float64 and float32)") {
  auto ref = training_reference()["cross_entropy"];
  Tensor logits = matrix(ref["logits"]);
  std::vector<int64_t> t = ref["target"].get<std::vector<int64_t>>();
  Tensor target = from_vector_i64(t, {int64_t(t.size())});
  for (DType dt : {DType::f64, DType::f32}) {
    CAPTURE(dtype_name(dt));
    double rtol = dt == DType::f64 ? 1e-13 : 1e-6;
    Tensor x = logits.to(dt);
    CHECK(std::abs(cross_entropy(x, target).item<double>() - ref["mean"].get<double>()) <= rtol * 2);
    CHECK(std::abs(cross_entropy(x, target, 0.0, Reduction::sum).item<double>() - ref["sum"].get<double>()) <=
          rtol * 10);
    CHECK(std::abs(cross_entropy(x, target, 0.1).item<double>() - ref["label_smoothing_0.1"].get<double>()) <=
          rtol * 2);
    CHECK_CLOSE(softmax(x), matrix(ref["softmax"]), rtol, 1e-15);
  }
}

// ------------------------------------------------------------------------------ gradient checks

TEST_CASE("gradcheck softmax, log_softmax, cross_entropy (mean, sum, label smoothing)") {
  Rng r(61);
  Tensor x = rn({4, 6}, r);
  Tensor t = from_vector_i64({5, 0, 3, 3}, {4});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return softmax(in[0]); }, {x}, {true}, 62);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return log_softmax(in[0]); }, {x}, {true}, 63);
  for (Reduction red : {Reduction::mean, Reduction::sum})
    for (double ls : {0.0, 0.1}) {
      CAPTURE(ls);
      CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t, ls, red); }, {x}, {true},
                      64);
    }
}

#if defined(RTUNE_TEST_HAS_CUDA)
// ------------------------------------------------------------------------------------ CPU vs CUDA

using namespace rtune::cudatest;
namespace K = rtune::kernels;

CUDA_TEST_CASE("softmax / log_softmax forward and backward") {
  Rng r(11);
  for (Shape s : {Shape{4, 10}, Shape{3, 130}, Shape{1, 1}}) {
    CAPTURE(shape_str(s));
    Tensor x = randn_f(s, r) * 3.0, gy = randn_f(s, r);
    for (bool log : {false, true}) {
      CAPTURE(log);
      Tensor y = empty(s), dy = nan_out(s);
      (log ? K::log_softmax_forward : K::softmax_forward)(x, y);
      (log ? K::log_softmax_forward : K::softmax_forward)(dev(x), dy);
      check_dev(dy, y, 1e-6, 1e-6);
      Tensor gx = empty(s), dgx = nan_out(s);
      (log ? K::log_softmax_backward : K::softmax_backward)(gy, y, gx);
      (log ? K::log_softmax_backward : K::softmax_backward)(dev(gy), dev(y), dgx);
      check_dev(dgx, gx, 1e-5, 1e-6);
    }
  }
}

CUDA_TEST_CASE("cross_entropy with label smoothing, mean and sum: loss, log-probs and gradient") {
  Rng r(12);
  for (auto [N, C] : {std::pair{4, 10}, std::pair{3, 131}, std::pair{1, 2}})
    for (double ls : {0.0, 0.1})
      for (K::Reduction red : {K::Reduction::mean, K::Reduction::sum}) {
        CAPTURE(N);
        CAPTURE(C);
        CAPTURE(ls);
        Tensor logits = randn_f({N, C}, r) * 2.0;
        std::vector<int64_t> t;
        for (int n = 0; n < N; ++n) t.push_back((n * 7 + 3) % C);
        Tensor target = from_vector_i64(t, {N});
        Tensor loss = empty({}), lp = empty({N, C}), dloss = nan_out({}), dlp = nan_out({N, C});
        K::cross_entropy_forward(logits, target, ls, red, loss, lp);
        K::cross_entropy_forward(dev(logits), dev(target), ls, red, dloss, dlp);
        check_dev(dloss, loss, 1e-6, 1e-6);
        check_dev(dlp, lp, 1e-6, 1e-6);
        Tensor g = scalar_tensor(0.75), gx = empty({N, C}), dgx = nan_out({N, C});
        K::cross_entropy_backward(g, lp, target, ls, red, gx);
        K::cross_entropy_backward(dev(g), dlp, dev(target), ls, red, dgx);
        check_dev(dgx, gx, 1e-6, 1e-7);
      }
  // An out-of-range target is found on the device: the loss is NaN at once, and the error is raised at
  // the next fence (no synchronising check inside the op), once.
  Tensor bad = from_vector_i64({1, 5}, {2});
  Tensor loss = empty({}, {DType::f32, gpu()}), lp = nan_out({2, 4});
  K::cross_entropy_forward(dev(randn_f({2, 4}, r)), dev(bad), 0.0, K::Reduction::mean, loss, lp);
  CHECK_THROWS_WITH_AS(K::fence(gpu()).wait(), doctest::Contains("target 5 at index 1 out of range for 4 classes"),
                       Error);
  CHECK(std::isnan(loss.cpu().item<float>()));
  CHECK_NOTHROW(K::fence(gpu()).wait());
}
#endif  // RTUNE_TEST_HAS_CUDA
