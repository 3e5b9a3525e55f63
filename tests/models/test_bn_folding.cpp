// Frozen eval-mode BatchNorm folded into its convolution (nn::conv_bn): a conv→BN pair whose weights
// need no gradient and whose BN normalises with running statistics runs as one conv with
// W' = W·γ/√(var+ε) and b' = β − mean·γ/√(var+ε). The folded network must equal the unfolded one
// (torch's bn(conv(x))) in values and input gradients; a change to any input of the fold (running
// statistics, loaded weights, an unfreeze, train()/eval(), a dtype change) must show in the next
// forward; train-mode BN is never folded.
//
// Tolerance (float32, u = 2^-24 ≈ 6e-8): folding rounds each W·s once (≤ 1 ulp), so one output of a
// folded conv, a K-term dot product, differs from the unfolded s·(W·x) by about √K·u relative to the
// magnitude of its terms (independent rounding errors), plus the one rounding BN itself no longer does.
// The tiny nets here have K ≤ 9·32 = 288 (width 4) or 9·64 = 576 (ResNet-18 width 8): √K·u ≤ 1.5e-6
// per layer. Adding that linearly over the ≤ 53 folded layers (no cancellation assumed, unit gain per
// layer) gives ≤ 8e-5: we require 1e-4 of max|y|, also the models_resnet_parity float32 bound.
// Measured ≈ 1e-6 (the errors are random, not aligned). float64: the same argument with u = 2^-53
// gives ≤ 2e-13; we require 1e-12 (measured ≈ 1e-15).
#include <cmath>
#include <map>
#include <memory>
#include "engine/autograd.h"
#include "engine/functional.h"
#include "engine/random_tensor.h"
#include "finetune/weights.h"
#include "models/resnet.h"
#include "tests/core/test_util.h"

using namespace rtune;

namespace {

// max|a − b| / max|b|.
double max_rel(const Tensor& a, const Tensor& b) {
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  REQUIRE(x.size() == y.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    num = std::max(num, std::abs(x[i] - y[i]));
    den = std::max(den, std::abs(y[i]));
  }
  return num / std::max(den, 1e-300);
}

std::vector<nn::BatchNorm2d*> bns(models::ResNet& m) {
  std::vector<nn::BatchNorm2d*> out;
  for (auto& [n, mod] : m.named_modules())
    if (auto* b = dynamic_cast<nn::BatchNorm2d*>(mod)) out.push_back(b);
  return out;
}

// Every conv→BN pair of the network (torchvision names: convK/bnK, downsample.0/downsample.1).
std::vector<std::pair<nn::Conv2d*, nn::BatchNorm2d*>> pairs(models::ResNet& m) {
  std::map<std::string, nn::Module*> by_name;
  for (auto& [n, mod] : m.named_modules()) by_name[n] = mod;
  std::vector<std::pair<nn::Conv2d*, nn::BatchNorm2d*>> out;
  for (auto& [n, mod] : by_name) {
    auto* b = dynamic_cast<nn::BatchNorm2d*>(mod);
    if (!b) continue;
    size_t dot = n.rfind('.');
    std::string last = dot == std::string::npos ? n : n.substr(dot + 1), head = n.substr(0, n.size() - last.size());
    std::string conv = last == "1" ? head + "0" : head + "conv" + last.substr(2);
    auto* c = dynamic_cast<nn::Conv2d*>(by_name.at(conv));
    REQUIRE(c);
    out.emplace_back(c, b);
  }
  return out;
}

void set_fold(models::ResNet& m, bool on) {
  for (auto* b : bns(m)) b->allow_fold = on;
}

// Random BN affine parameters and non-trivial running statistics (fresh BNs are the identity).
void randomize_bn(models::ResNet& m, uint64_t seed) {
  NoGradGuard ng;
  Rng r(seed);
  for (auto* b : bns(m)) {
    Shape c = b->weight.shape();
    TensorOptions o{b->weight.dtype()};
    b->weight.copy_(uniform(c, 0.5, 1.5, r, o));
    b->bias.copy_(mul(randn(c, r, o), 0.2));
    b->running_mean.copy_(mul(randn(c, r, o), 0.3));
    b->running_var.copy_(uniform(c, 0.3, 2.0, r, o));
  }
}

std::shared_ptr<models::ResNet> make_frozen(const char* arch, int64_t width, DType dt, uint64_t seed) {
  auto m = std::make_shared<models::ResNet>(models::ResNetConfig{arch, width, 10, false, seed});
  m->to(dt);
  randomize_bn(*m, seed + 1);
  for (auto& [n, p] : m->named_parameters()) p->set_requires_grad(false);
  m->eval();
  return m;
}

Tensor forward(models::ResNet& m, const Tensor& x, bool fold) {
  set_fold(m, fold);
  Tensor y = m.forward(x);
  set_fold(m, true);
  return y;
}

Tensor input(DType dt, uint64_t seed, int64_t n = 2, int64_t hw = 32) {
  Rng r(seed);
  return randn({n, 3, hw, hw}, r, {dt});
}

void check_eval_equal(const char* arch, int64_t width, DType dt, double tol) {
  auto m = make_frozen(arch, width, dt, 11);
  auto ps = pairs(*m);
  CHECK(ps.size() == (std::string(arch) == "resnet18" ? 20u : 53u));
  for (auto [c, b] : ps) REQUIRE(nn::bn_foldable(*c, *b));
  Tensor x = input(dt, 5);
  NoGradGuard ng;
  Tensor folded = forward(*m, x, true), plain = forward(*m, x, false);
  double e = max_rel(folded, plain);
  MESSAGE(std::string(arch) << " " << dtype_name(dt) << ": folded vs unfolded max|Δ|/max|y| = " << e);
  CHECK(e <= tol);
  CHECK(e > 0.0);  // the fold really ran (it rounds differently); equal bits would mean the same path
}

}  // namespace

TEST_CASE("ResNet-18 eval, all frozen: folded forward == unfolded (f32 1e-4, f64 1e-12)") {
  check_eval_equal("resnet18", 8, DType::f32, 1e-4);
  check_eval_equal("resnet18", 8, DType::f64, 1e-12);
}

TEST_CASE("ResNet-50 eval, all frozen: folded forward == unfolded (f32 1e-4, f64 1e-12)") {
  check_eval_equal("resnet50", 4, DType::f32, 1e-4);
  check_eval_equal("resnet50", 4, DType::f64, 1e-12);
}

TEST_CASE("input gradient through frozen folded blocks == unfolded; a trainable stem still gets its gradients") {
  for (const char* arch : {"resnet18", "resnet50"}) {
    auto m = make_frozen(arch, 4, DType::f64, 21);
    // The stem trains (its BN in train mode: never folded), every block after it is frozen and folded.
    m->conv1->weight.set_requires_grad(true);
    m->bn1->weight.set_requires_grad(true);
    m->bn1->bias.set_requires_grad(true);
    m->bn1->train();
    CHECK_FALSE(nn::bn_foldable(*m->conv1, *m->bn1));
    Rng r(3);
    Tensor probe = randn({2, 10}, r, {DType::f64});
    auto run = [&](bool fold) {
      Tensor x = input(DType::f64, 9);
      x.set_requires_grad(true);
      m->conv1->weight.zero_grad();
      m->bn1->weight.zero_grad();
      Tensor loss = sum(mul(forward(*m, x, fold), probe));
      loss.backward();
      return std::make_tuple(x.grad(), m->conv1->weight.grad(), m->bn1->weight.grad());
    };
    auto [gx_f, gw_f, gb_f] = run(true);
    auto [gx_p, gw_p, gb_p] = run(false);
    CHECK(max_rel(gx_f, gx_p) <= 1e-12);
    CHECK(max_rel(gw_f, gw_p) <= 1e-12);
    CHECK(max_rel(gb_f, gb_p) <= 1e-12);
  }
}

TEST_CASE("staleness: the next forward sees changed running stats, loaded weights, an unfreeze, train()/eval(), a dtype") {
  auto m = make_frozen("resnet18", 4, DType::f32, 31);
  Tensor x = input(DType::f32, 7);  // no grad: every parameter frozen (the unfreeze below records a graph)
  Tensor y0 = forward(*m, x, true);
  auto same_as_unfolded = [&](const char* what) {
    Tensor f = forward(*m, x, true), p = forward(*m, x, false);
    INFO(what);
    CHECK(max_rel(f, p) <= 1e-4);
    return f;
  };
  // 1. a running_var changed in place (the storage stays the same)
  auto [conv, bnp] = pairs(*m)[5];
  nn::BatchNorm2d& bn = *bnp;
  bn.running_var.fill_(4.0);
  Tensor y1 = same_as_unfolded("running_var changed in place");
  CHECK(max_rel(y1, y0) > 1e-3);
  // 2. other weights loaded (copied into the same tensors)
  auto other = make_frozen("resnet18", 4, DType::f32, 77);
  std::vector<std::pair<std::string, Tensor>> sd;
  for (auto& [n, t] : other->state_dict()) sd.emplace_back(n, *t);
  finetune::load_weights(*m, sd);
  Tensor y2 = same_as_unfolded("weights loaded");
  CHECK(max_rel(y2, forward(*other, x, false)) <= 1e-4);
  CHECK(max_rel(y2, y1) > 1e-3);
  // 3. an unfreeze (phase change): the pair is no longer folded
  bn.weight.set_requires_grad(true);
  CHECK_FALSE(nn::bn_foldable(*conv, bn));
  same_as_unfolded("BN weight unfrozen");
  bn.weight.set_requires_grad(false);
  // 4. train() then eval(): running statistics moved in train mode are used by the next eval forward
  m->train();
  for (auto [c, b] : pairs(*m)) CHECK_FALSE(nn::bn_foldable(*c, *b));
  forward(*m, x, true);  // updates every running statistic
  m->eval();
  Tensor y4 = same_as_unfolded("after a train-mode forward");
  CHECK(max_rel(y4, y2) > 1e-4);
  // 5. a dtype change
  m->to(DType::f64);
  Tensor x64 = x.to(DType::f64);
  Tensor f = forward(*m, x64, true), p = forward(*m, x64, false);
  CHECK(f.dtype() == DType::f64);
  CHECK(max_rel(f, p) <= 1e-12);
}

TEST_CASE("train-mode BN is never folded; use_running_stats (--frozen-bn eval) with frozen weights is") {
  auto m = make_frozen("resnet18", 4, DType::f32, 41);
  m->train();
  for (auto [c, b] : pairs(*m)) CHECK_FALSE(nn::bn_foldable(*c, *b));
  int64_t before = m->bn1->num_batches_tracked.item<int64_t>();
  {
    NoGradGuard ng;
    m->forward(input(DType::f32, 1));
  }
  CHECK(m->bn1->num_batches_tracked.item<int64_t>() == before + 1);  // batch statistics ran
  m->bn1->use_running_stats = true;
  CHECK(nn::bn_foldable(*m->conv1, *m->bn1));
  m->conv1->weight.set_requires_grad(true);
  CHECK_FALSE(nn::bn_foldable(*m->conv1, *m->bn1));
  // Inference and validation (eval mode under NoGradGuard) fold even trainable layers: no gradient is taken.
  m->eval();
  for (auto& [n, p] : m->named_parameters()) p->set_requires_grad(true);
  for (auto [c, b] : pairs(*m)) CHECK_FALSE(nn::bn_foldable(*c, *b));
  NoGradGuard ng;
  for (auto [c, b] : pairs(*m)) CHECK(nn::bn_foldable(*c, *b));
  Tensor x = input(DType::f32, 2);
  CHECK(max_rel(forward(*m, x, true), forward(*m, x, false)) <= 1e-4);
}
