// What a training step asks of cuDNN/cuBLAS and of device memory, read from the stand-ins' call log
// and the simulated runtime's counters (simulated build only): a frozen backbone runs forward only
// (no backward-filter call, no backward-data call below the first trainable layer), a training loop
// allocates device memory only in its first step (the caching allocator serves the rest), and device
// out-of-memory is reported with the allocation size and advice to lower --batch.
#include <functional>

#include "engine/autograd.h"
#include "engine/functional.h"
#include "engine/nn/autocast.h"
#include "engine/optim/optimizer.h"
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/sim/call_log.h"
#include "models/resnet.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/cuda/skip_without_device.h"

using namespace rtune;
using namespace rtune::cudatest;

namespace {

struct Setup {
  std::shared_ptr<models::ResNet> model;
  std::unique_ptr<optim::Optimizer> opt;
  Tensor x, target;
};

Setup make(const std::function<bool(const std::string&)>& trainable) {
  Setup s;
  s.model = std::make_shared<models::ResNet>(models::ResNetConfig{"resnet18", 8, 10, false, 1});
  s.model->to(gpu());
  std::vector<Tensor*> ps;
  for (auto& [n, p] : s.model->named_parameters()) {
    if (trainable(n)) ps.push_back(p);
    else p->set_requires_grad(false);
  }
  optim::ParamGroup g;
  g.params = ps;
  g.momentum = 0.9;
  s.opt = std::make_unique<optim::Adam>(std::vector{g});
  s.opt->reserve_state();  // as the trainer does
  Rng r(3);
  s.x = randn({2, 3, 64, 64}, r).to(gpu());
  s.target = from_vector_i64({1, 7}, {2}).to(gpu());
  s.model->train();
  return s;
}

void step(Setup& s, const nn::ComputeMode* mode = nullptr) {
  s.opt->zero_grad();
  Tensor logits;
  if (mode) {
    nn::Autocast autocast(*mode);
    logits = cast(s.model->forward(s.x), DType::f32);
  } else {
    logits = s.model->forward(s.x);
  }
  Tensor loss = cross_entropy(logits, s.target);
  loss.backward();
  s.opt->step();
}

int count(const std::vector<sim::LibCall>& log, const std::string& fn) {
  int n = 0;
  for (auto& c : log) n += c.function == fn;
  return n;
}

// Logs one training step (after a warm-up step) and returns the calls.
std::vector<sim::LibCall> logged_step(Setup& s) {
  step(s);
  sim::call_log_clear();
  sim::call_log_enable(true);
  step(s);
  sim::call_log_enable(false);
  return sim::call_log_take();
}

}  // namespace

TEST_CASE("frozen backbone (fc only): forward convolutions only, no convolution or BN backward") {
  Setup s = make([](const std::string& n) { return n.rfind("fc.", 0) == 0; });
  auto log = logged_step(s);
  CHECK(count(log, "cudnnConvolutionForward") == 20);  // resnet18: 20 convolutions
  CHECK(count(log, "cudnnConvolutionBackwardFilter") == 0);
  CHECK(count(log, "cudnnConvolutionBackwardData") == 0);
  CHECK(count(log, "cudnnBatchNormalizationBackward") == 0);
  CHECK(count(log, "cublasSgemm_v2") == 2);  // fc forward + fc weight gradient; no input gradient
}

TEST_CASE("layer4 + fc trainable: backward data only inside layer4, backward filter for its 5 convolutions") {
  Setup s = make([](const std::string& n) { return n.rfind("layer4.", 0) == 0 || n.rfind("fc.", 0) == 0; });
  auto log = logged_step(s);
  CHECK(count(log, "cudnnConvolutionBackwardFilter") == 5);
  // layer4.0.conv1 and layer4.0.downsample read layer3's output, which needs no gradient.
  CHECK(count(log, "cudnnConvolutionBackwardData") == 3);
  for (auto& c : log) {
    if (c.function != "cudnnConvolutionBackwardData") continue;
    CAPTURE(c.detail);
    CHECK(c.detail.find("dx [2,64,2,2]") != std::string::npos);  // layer4's activations at 64 px
  }
}

// The caching allocator serves a request only from blocks of exactly its size class. The optimizer's
// state is reserved before step 1 (Optimizer::reserve_state), so step 1 obtains every block the loop
// will use and every later step reuses them: fp32 NCHW, and the trainer's CUDA modes (channels-last
// fp32 and bf16 autocast, whose per-call weight casts also come from the cache).
TEST_CASE("a training loop makes no device allocation after its first step") {
  const nn::ComputeMode cl32{DType::f32, MemoryFormat::channels_last}, cl16{DType::bf16, MemoryFormat::channels_last};
  for (const nn::ComputeMode* mode : {static_cast<const nn::ComputeMode*>(nullptr), &cl32, &cl16}) {
    CAPTURE(mode ? dtype_name(mode->dtype) : "no autocast");
    Setup s = make([](const std::string&) { return true; });
    step(s, mode);
    auto sim0 = cuda::rt::sim_memory_stats();
    auto a0 = cuda::allocator_stats();
    for (int i = 0; i < 4; ++i) step(s, mode);
    CHECK(cuda::rt::sim_memory_stats().allocations == sim0.allocations);
    CHECK(cuda::allocator_stats().device_mallocs == a0.device_mallocs);
    CHECK(cuda::allocator_stats().device_frees == a0.device_frees);
    CHECK(cuda::allocator_stats().cache_hits > a0.cache_hits);
  }
}

TEST_CASE("device out of memory names the allocation and the device memory (rtune train adds the --batch to lower)") {
  auto before = cuda::rt::sim_memory_stats();
  cuda::rt::sim_set_memory_limit(before.live_bytes + (size_t(8) << 20));
  std::string message;
  try {
    Tensor big = empty({64, 1024, 1024}, {DType::f32, gpu()});  // 256 MiB
  } catch (const cuda::OutOfMemory& e) {
    message = e.what();
  }
  cuda::rt::sim_set_memory_limit(before.limit_bytes);
  CHECK(message.find("CUDA out of memory: allocating 256.0 MiB") != std::string::npos);
  CHECK(message.find("device total") != std::string::npos);
  Tensor ok = empty({64, 1024, 1024}, {DType::f32, gpu()});  // fits again
  CHECK(ok.numel() == 64 * 1024 * 1024);
}
