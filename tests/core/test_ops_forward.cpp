// Forward values against independent references: small hand-computed cases and PyTorch's numbers in
// tests/fixtures/training_reference.json (cross-entropy and softmax, float64); the fused add_relu
// against the unfused relu(add()) it replaces.
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include "engine/functional.h"
#include "kernels/ops.h"
#include "tests/core/test_util.h"

using namespace rtune;

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

TEST_CASE("conv2d: hand-computed 3x3 with padding, stride 2, bias") {
  // x = 1..16 as 4×4, w = all ones 3×3, pad 1: each output is the sum of the 3×3 neighbourhood.
  std::vector<double> xv(16);
  for (int i = 0; i < 16; ++i) xv[size_t(i)] = i + 1;
  Tensor x = from_vector(xv, {1, 1, 4, 4}, DType::f64);
  Tensor w = ones({1, 1, 3, 3}, {DType::f64});
  Tensor y = conv2d(x, w, Tensor(), {1, 1, 1, 1});
  CHECK(y.to_vector<double>() == std::vector<double>{14, 24, 30, 22, 33, 54, 63, 45, 57, 90, 99, 69, 46, 72, 78, 54});
  Tensor y2 = conv2d(x, w, from_vector({0.5}, {1}, DType::f64), {2, 2, 1, 1});
  CHECK(y2.to_vector<double>() == std::vector<double>{14.5, 30.5, 57.5, 99.5});
  // Two input channels, two output channels, 1×1: a per-pixel matrix product.
  Tensor x2 = from_vector({1, 2, 3, 4, 10, 20, 30, 40}, {1, 2, 2, 2}, DType::f64);
  Tensor w2 = from_vector({1, 1, 2, -1}, {2, 2, 1, 1}, DType::f64);
  CHECK(conv2d(x2, w2, Tensor(), {}).to_vector<double>() == std::vector<double>{11, 22, 33, 44, -8, -16, -24, -32});
}

TEST_CASE("batch_norm train: batch statistics, unbiased running variance, momentum") {
  // Channel 0 holds 1,2,3,4 (mean 2.5, biased var 1.25, unbiased 5/3); channel 1 holds 0,0,0,8.
  Tensor x = from_vector({1, 2, 0, 0, 3, 4, 0, 8}, {2, 2, 1, 2}, DType::f64);
  Tensor rm = zeros({2}, {DType::f64}), rv = ones({2}, {DType::f64});
  Tensor w = from_vector({2, 1}, {2}, DType::f64), b = from_vector({0.5, 0}, {2}, DType::f64);
  Tensor y = batch_norm(x, w, b, rm, rv, true, 0.1, 0.0);
  CHECK_CLOSE(rm, from_vector({0.25, 0.2}, {2}, DType::f64), 1e-15);
  CHECK_CLOSE(rv, from_vector({0.9 + 0.1 * 5.0 / 3.0, 0.9 + 0.1 * 16.0}, {2}, DType::f64), 1e-15);
  double s0 = 1 / std::sqrt(1.25);
  std::vector<double> y0 = y.to_vector<double>();
  CHECK(std::abs(y0[0] - (2 * (1 - 2.5) * s0 + 0.5)) < 1e-14);
  CHECK(std::abs(y0[5] - (2 * (4 - 2.5) * s0 + 0.5)) < 1e-14);
  CHECK(std::abs(y0[6] - (0 - 2) / std::sqrt(12.0)) < 1e-14);
  // Eval uses the running stats.
  Tensor ye = batch_norm(x, w, b, rm, rv, false, 0.1, 1e-5);
  CHECK(std::abs(ye.to_vector<double>()[0] - (2 * (1 - 0.25) / std::sqrt(rv.to_vector<double>()[0] + 1e-5) + 0.5)) <
        1e-14);
}

TEST_CASE("max_pool2d 3x3/2/1 (ResNet stem): padding never wins, first maximum wins ties") {
  Tensor x = from_vector({-5, -4, -3, -2, -1, -6, -7, -8, -9}, {1, 1, 3, 3}, DType::f64);
  Tensor y = max_pool2d(x, {3, 3, 2, 2, 1, 1});
  CHECK(y.shape() == Shape{1, 1, 2, 2});
  CHECK(y.to_vector<double>() == std::vector<double>{-1, -1, -1, -1});
  Tensor ties = ones({1, 1, 2, 2}, {DType::f64}).set_requires_grad(true);
  Tensor yt = max_pool2d(ties, {2, 2, 2, 2, 0, 0});
  sum(yt).backward();
  CHECK(ties.grad().to_vector<double>() == std::vector<double>{1, 0, 0, 0});
}

TEST_CASE("adaptive_avg_pool2d bins, linear and relu by hand") {
  Tensor x = from_vector({1, 2, 3, 4, 5}, {1, 1, 1, 5}, DType::f64);
  // 5 → 3 bins: [0,2), [1,4), [3,5)
  CHECK(adaptive_avg_pool2d(x, 1, 3).to_vector<double>() == std::vector<double>{1.5, 3, 4.5});
  CHECK(adaptive_avg_pool2d(x, 1, 1).to_vector<double>() == std::vector<double>{3});
  Tensor a = from_vector({1, 2, 3, 4}, {2, 2}, DType::f64), w = from_vector({1, 0, 1, -1, 2, 2}, {3, 2}, DType::f64);
  CHECK(linear(a, w, from_vector({0, 1, 0}, {3}, DType::f64)).to_vector<double>() ==
        std::vector<double>{1, 0, 6, 3, 0, 14});
  CHECK(relu(from_vector({-1, 0, 2}, {3}, DType::f64)).to_vector<double>() == std::vector<double>{0, 0, 2});
}

TEST_CASE("float32 ops match float64 ops to float32 precision") {
  Rng r(5);
  Tensor x = randn({2, 3, 9, 9}, r, {DType::f64}), w = randn({4, 3, 3, 3}, r, {DType::f64});
  Tensor y64 = conv2d(x, w, Tensor(), {2, 2, 1, 1});
  Tensor y32 = conv2d(x.to(DType::f32), w.to(DType::f32), Tensor(), {2, 2, 1, 1});
  CHECK_CLOSE(y32, y64, 1e-5, 1e-5);
}

TEST_CASE("add_relu equals relu(add()) bit for bit, values and gradients (f32, f64; NCHW, channels-last, strided)") {
  Rng r(6);
  for (DType dt : {DType::f32, DType::f64})
    for (MemoryFormat fmt : {MemoryFormat::contiguous, MemoryFormat::channels_last}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(int(fmt));
      Tensor a = randn({3, 4, 5, 6}, r, {dt}).contiguous(fmt);
      Tensor b = randn({3, 4, 5, 9}, r, {dt}).narrow(3, 2, 6);  // strided along W
      // Exact ties at the kink and NaN: NaN + x -> 0 as relu maps NaN to 0.
      a.narrow(0, 0, 1).copy_(b.narrow(0, 0, 1) * -1.0);
      a.narrow(0, 1, 1).narrow(1, 0, 1).fill_(std::nan(""));
      Tensor y_ref = relu(add(a, b));
      Tensor y = add_relu(a, b);
      REQUIRE(y.is_contiguous(fmt));
      CHECK(y.to_vector<double>() == y_ref.to_vector<double>());
      CHECK(y.narrow(0, 1, 1).narrow(1, 0, 1).to_vector<double>() == std::vector<double>(30, 0.0));
      // Gradients through autograd: the same relu_backward handed to both inputs.
      Tensor probe = randn(a.shape(), r, {dt});
      auto grads = [&](bool fused) {
        Tensor ai = a.detach().clone(fmt).set_requires_grad(true), bi = b.detach().clone().set_requires_grad(true);
        Tensor out = fused ? add_relu(ai, bi) : relu(add(ai, bi));
        sum(mul(out, probe)).backward();
        return std::pair{ai.grad(), bi.grad()};
      };
      auto [ga, gb] = grads(true);
      auto [ga0, gb0] = grads(false);
      CHECK(ga.to_vector<double>() == ga0.to_vector<double>());
      CHECK(gb.to_vector<double>() == gb0.to_vector<double>());
    }
}

TEST_CASE("add_relu: the output is written everywhere and bad arguments throw") {
  Rng r(7);
  Tensor a = randn({2, 3, 4, 5}, r), b = randn({2, 3, 4, 5}, r);
  Tensor y = full(a.shape(), std::nan(""));
  kernels::add_relu_forward(a, b, y);
  CHECK(y.to_vector<double>() == relu(add(a, b)).to_vector<double>());
  Tensor bad_shape = empty({2, 3, 4, 4});
  CHECK_THROWS_AS(kernels::add_relu_forward(a, b, bad_shape), Error);
  CHECK_THROWS_AS(add_relu(a, b.to(DType::f64)), Error);
  CHECK_THROWS_AS(add_relu(a, randn({2, 3, 4, 4}, r)), Error);
  Tensor not_dense = empty({2, 3, 4, 7}).narrow(3, 0, 5);
  CHECK_THROWS_AS(kernels::add_relu_forward(a, b, not_dense), Error);
}

TEST_CASE("inv_sqrt_add: 1/sqrt(x + s) with the add in the tensor's dtype and the root in double") {
  const std::vector<double> v{0.0, 1e-3, 0.25, 1.0, 3.7, 1234.5};
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dt));
    Tensor x = from_vector(v, {6}, dt), y = empty({6}, {dt});
    kernels::inv_sqrt_add(x, 1e-5, y);
    std::vector<double> got = y.to_vector<double>();
    for (size_t i = 0; i < v.size(); ++i) {
      const double expect = dt == DType::f32 ? double(float(1.0 / std::sqrt(double(float(v[i]) + float(1e-5)))))
                                             : 1.0 / std::sqrt(v[i] + 1e-5);
      CHECK(got[i] == expect);
    }
  }
}
