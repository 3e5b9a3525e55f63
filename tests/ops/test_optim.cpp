// The fused optimizer updates, norms and clamp (kernels/cpu/optim.cpp, kernels/cuda/optim.cu): the
// device against the CPU oracle (1e-6 / 1e-7 over 3 steps; norms 1e-12; clamp exact). CUDA cases
// only, so built with a CUDA backend only; the per-element rules themselves are tested in tests/optim/.
#include <limits>

#include "kernels/ops.h"
#include "tests/cuda/skip_without_device.h"
#include "tests/ops/ops_test_util.h"

using namespace rtune;
using namespace rtune::cudatest;
using namespace rtune::opstest;
namespace K = rtune::kernels;

TEST_CASE("fused SGD / Adam / AdamW / RMSprop updates: device == CPU over 3 steps") {
  Rng r(13);
  Shape s{7, 37};  // 259 elements: two blocks
  Tensor p0 = randn_f(s, r);
  std::vector<Tensor> grads{randn_f(s, r), randn_f(s, r), randn_f(s, r)};
  auto check_run = [&](const char* name, auto&& step) {
    CAPTURE(name);
    Tensor pc = p0.clone(), pd = dev(p0);
    std::vector<Tensor> sc(3), sd(3);
    for (int i = 0; i < 3; ++i) {
      sc[i] = zeros(s);
      sd[i] = zeros(s, {DType::f32, gpu()});
    }
    for (int k = 0; k < 3; ++k) {
      step(pc, grads[size_t(k)], sc, k + 1);
      step(pd, dev(grads[size_t(k)]), sd, k + 1);
    }
    check_dev(pd, pc, 1e-6, 1e-7);
    for (int i = 0; i < 3; ++i) check_dev(sd[size_t(i)], sc[size_t(i)], 1e-6, 1e-7);
  };
  check_run("sgd nesterov wd", [](Tensor& p, const Tensor& g, std::vector<Tensor>& st, int k) {
    K::sgd_update_many({{&p, &g, &st[0], optim::SgdHyper{0.05, 0.9, 0.0, 5e-4, true, false}, k == 1}});
  });
  check_run("adam amsgrad", [](Tensor& p, const Tensor& g, std::vector<Tensor>& st, int k) {
    optim::AdamHyper h{1e-2, 0.9, 0.999, 1e-8, 1e-4, true, false, false};
    K::adam_update_many({{&p, &g, &st[0], &st[1], &st[2], optim::make_adam_step(h, k)}});
  });
  check_run("adamw", [](Tensor& p, const Tensor& g, std::vector<Tensor>& st, int k) {
    optim::AdamHyper h{2e-3, 0.9, 0.999, 1e-8, 1e-2, false, true, false};
    K::adam_update_many({{&p, &g, &st[0], &st[1], nullptr, optim::make_adam_step(h, k)}});
  });
  check_run("rmsprop centered momentum", [](Tensor& p, const Tensor& g, std::vector<Tensor>& st, int) {
    optim::RmspropHyper h{1e-2, 0.99, 1e-8, 1e-4, 0.9, true, false};
    K::rmsprop_update_many({{&p, &g, &st[0], &st[1], &st[2], h}});
  });
}

TEST_CASE("norms (1, 2, 3, inf) and clamp: device == CPU") {
  Rng r(14);
  std::vector<Tensor> xs{randn_f({5, 7}, r), randn_f({300}, r), randn_f({1}, r)};
  std::vector<Tensor> dxs;
  for (auto& x : xs) dxs.push_back(dev(x));
  for (double p : {1.0, 2.0, 3.0, std::numeric_limits<double>::infinity()}) {
    CAPTURE(p);
    CHECK_CLOSE(K::norms(dxs, p), K::norms(xs, p), 1e-12, 1e-12);
  }
  Tensor y = empty({300}), dy = nan_out({300});
  K::clamp(xs[1], -0.5, 0.25, y);
  K::clamp(dxs[1], -0.5, 0.25, dy);
  check_dev(dy, y, 0, 0);
}
