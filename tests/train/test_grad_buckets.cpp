// GPU ranks' gradient buckets (finetune/grad_buckets.h) against a stand-in communicator: a rank whose
// peer contributes zero gradients and zero loss, so the mean is exactly half of this rank's values.
// Held on CPU tensors (the bucket logic is device-independent; the NCCL path itself runs in e2e_mpi on
// the simulated device): every gradient comes back halved, buckets start during the backward (the
// engine's LeafGradHook), a parameter the graph did not reach gets zero, and the order of collectives
// is the same on every step (NCCL needs that of every rank).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/functional.h"
#include "engine/random_tensor.h"
#include "finetune/grad_buckets.h"
#include "kernels/ops.h"
#include "models/resnet.h"

using namespace rtune;

namespace {

// Two ranks where the other one sends zeros: the mean is t / 2, exactly in binary floating point.
class HalvingComm final : public dist::DeviceComm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 2; }
  void allreduce_mean_async(Tensor& t) override {
    sizes.push_back(t.numel());
    std::vector<double> v = t.to_vector<double>();
    for (double& x : v) x *= 0.5;
    kernels::copy(from_vector(v, t.shape(), t.dtype()), t);
  }
  void broadcast_async(Tensor&, int) override {}
  void join() override { ++joins; }
  uint64_t mark() override { return marks++; }
  void wait_bounded(const char*, uint64_t) override {}
  std::string describe() const override { return "halving stand-in"; }
  std::vector<int64_t> sizes;
  int joins = 0;
  uint64_t marks = 0;
};

struct Step {
  std::vector<std::vector<float>> grads;
  float loss = 0;
};

Step run_step(models::ResNet& m, finetune::GradBuckets* buckets) {
  Rng rng(5);
  Tensor x = randn({2, 3, 16, 16}, rng);
  Tensor y = from_vector_i64({0, 2}, {2});
  for (auto& [name, p] : m.named_parameters()) p->set_grad(Tensor());
  Tensor loss = cross_entropy(m.forward(x), y);
  {
    LeafGradHook hook(buckets ? [buckets](const TensorImpl* l) { buckets->on_gradient(l); }
                              : std::function<void(const TensorImpl*)>());
    loss.backward();
  }
  Step s;
  s.loss = loss.item<float>();
  if (buckets) {
    uint64_t mark = 0;
    s.loss = buckets->finish(loss, &mark).item<float>();
  }
  for (auto& [name, p] : m.named_parameters())
    s.grads.push_back(p->grad().defined() ? p->grad().to_vector<float>() : std::vector<float>());
  return s;
}

}  // namespace

TEST_CASE("gradient buckets: every gradient becomes the ranks' mean; buckets start during the backward") {
  models::ResNet m(models::ResNetConfig{"resnet18", 4, 3, false, 7});
  const Step ref = run_step(m, nullptr);
  std::vector<Tensor*> params;
  for (auto& [name, p] : m.named_parameters()) params.push_back(p);
  HalvingComm comm;
  finetune::GradBuckets buckets(comm, params, DType::f32, Device::cpu(), 16 << 10);  // 16 KiB: several buckets
  REQUIRE(buckets.bucket_count() > 3);
  for (int step = 0; step < 2; ++step) {
    comm.sizes.clear();
    const Step got = run_step(m, &buckets);
    REQUIRE(got.grads.size() == ref.grads.size());
    for (size_t i = 0; i < ref.grads.size(); ++i) {
      REQUIRE(got.grads[i].size() == ref.grads[i].size());
      for (size_t k = 0; k < ref.grads[i].size(); ++k) REQUIRE(got.grads[i][k] == ref.grads[i][k] * 0.5f);
    }
    CHECK(got.loss == ref.loss * 0.5f);
    // All buckets but none were complete before finish(): the backward reached every parameter.
    CHECK(buckets.started_early() == buckets.bucket_count());
    CHECK(comm.sizes.size() == buckets.bucket_count() + 1);  // the buckets, then the loss
    CHECK(comm.sizes.back() == 1);
    CHECK(comm.joins == step + 1);
  }
}

TEST_CASE("gradient buckets: a parameter the backward did not reach adds zero; frozen ones never travel") {
  models::ResNet m(models::ResNetConfig{"resnet18", 4, 3, false, 7});
  Tensor unused = zeros({5}, {DType::f32});
  unused.set_requires_grad(true);
  std::vector<Tensor*> params = {&unused};
  int64_t trained = unused.numel();
  for (auto& [name, p] : m.named_parameters())
    if (name.rfind("fc.", 0) == 0) params.push_back(p), trained += p->numel();
  HalvingComm comm;
  finetune::GradBuckets buckets(comm, params, DType::f32, Device::cpu());
  CHECK(buckets.bucket_count() == 1);
  run_step(m, &buckets);
  CHECK(unused.grad().defined());
  CHECK(unused.grad().to_vector<float>() == std::vector<float>(5, 0.0f));
  CHECK(comm.sizes.front() == trained);  // the backbone's gradients exist but are not in the buffer
  CHECK(buckets.started_early() == 0);   // `unused` kept the one bucket open until finish()
}
