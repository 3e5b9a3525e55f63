// Whole tiny ResNets (width 8, 64 px, the fixtures of tests/models and tests/train) on the CUDA
// device against the CPU path in float32: train-mode forward, backward, an optimizer step, BN running
// statistics; and the three 3-step training fixtures reproduced on the device. Tolerances: device vs
// CPU float32 ~1e-5 norm-wise where the problem is well conditioned (ResNet-18); ResNet-50's layer4 BN
// sees 12 values per channel, so its gradients are compared norm-wise at 1e-3 (see
// tests/models/test_resnet_parity.cpp for the conditioning). Against the float64 PyTorch
// trajectories, float32 (either device) is held to 1e-3 relative on losses and parameters.
#include <fstream>
#include <functional>
#include <map>
#include <memory>

#include "engine/autograd.h"
#include "engine/functional.h"
#include "engine/nn/autocast.h"
#include "engine/optim/optimizer.h"
#include <nlohmann/json.hpp>
#include "io/formats/safetensors.h"
#include "finetune/weights.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/cuda/skip_without_device.h"
#include "tests/train/three_step_recipes.h"

using namespace rtune;
using namespace rtune::cudatest;

namespace {

using test::ref_tensor;

double normwise_error(const Tensor& a, const Tensor& b) {
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    num += (x[i] - y[i]) * (x[i] - y[i]);
    den += y[i] * y[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

std::shared_ptr<models::ResNet> make_model(const char* arch, const char* weights, int64_t classes, Device d,
                                          DType dt = DType::f32) {
  auto m = std::make_shared<models::ResNet>(models::ResNetConfig{arch, 8, classes});
  m->to(dt);
  finetune::load_weights(*m, finetune::read_weight_file(test::fixture(weights)).tensors);
  m->to(d);
  return m;
}

// Everything one training step produces, brought back to the host.
struct StepResult {
  Tensor logits, loss, input_grad;
  std::map<std::string, Tensor> grads, params, buffers;
};

// With `mode`, the forward runs under nn::Autocast (rtune train's CUDA path) and the loss in fp32.
// With `step_grads`, the optimizer steps on those gradients (the CPU's) instead of the run's own, so
// the parameters compare the device's update rule alone: `grads` still holds the run's own gradients.
StepResult train_step(const char* arch, const char* weights, const char* ref_file, int64_t classes, Device d,
                      DType dt = DType::f32, MemoryFormat fmt = MemoryFormat::contiguous,
                      const nn::ComputeMode* mode = nullptr,
                      const std::map<std::string, Tensor>* step_grads = nullptr) {
  io::SafetensorsFile ref = io::SafetensorsFile::open(test::fixture(ref_file));
  auto model = make_model(arch, weights, classes, d, dt);
  model->train();
  std::vector<Tensor*> params;
  for (auto& [n, p] : model->named_parameters()) params.push_back(p);
  optim::ParamGroup g;
  g.params = params;
  g.lr = 1e-3;
  g.momentum = 0.9;
  optim::Adam opt({g});
  Tensor x = ref_tensor(ref, "input").to(dt).contiguous(fmt).to(d).detach().set_requires_grad(true);
  Tensor logits;
  if (mode) {
    nn::Autocast autocast(*mode);
    logits = cast(model->forward(x), dt);
  } else {
    logits = model->forward(x);
  }
  Tensor loss = cross_entropy(logits, ref_tensor(ref, "target").to(d));
  loss.backward();
  StepResult r{logits.cpu(), loss.cpu(), x.grad().cpu(), {}, {}, {}};
  for (auto& [n, p] : model->named_parameters()) r.grads[n] = p->grad().cpu();
  if (step_grads)
    for (auto& [n, p] : model->named_parameters()) p->grad().copy_(step_grads->at(n).to(p->grad().dtype()).to(d));
  opt.step();
  for (auto& [n, p] : model->named_parameters()) r.params[n] = p->cpu();
  for (auto& [n, b] : model->named_buffers()) r.buffers[n] = b->cpu();
  return r;
}

// Parameters are compared after both runs step on the same (the CPU's) gradients: Adam's first step
// moves a weight by ≈ lr·sign(g), so comparing steps on each run's own gradients would flip the update
// of any element whose gradient is within the gradient error of zero (a CPU with another GEMM kernel,
// AVX2 instead of AVX-512, rounds such elements differently). On the same gradients the update is a
// handful of rounded operations per element (m, v, bias corrections, sqrt, divide, subtract): at most
// ~4 ulp of lr plus ½ ulp of the weight, so norm-wise ≤ 2^-24·(1 + 4·lr·√n/‖p‖) ≈ 7e-8 in float32 for
// lr = 1e-3 and weights of ~0.05 (2^-53·… ≈ 1.3e-16 in float64); the bounds below leave 10x of room.
constexpr double kF32StepNormwise = 1e-6, kF64StepNormwise = 1e-14;
struct Tols {
  double logits_normwise, grad_normwise, param_normwise, buffer_rtol, buffer_atol;
};
constexpr Tols kF32{1e-5, 1e-5, kF32StepNormwise, 1e-4, 1e-6};
constexpr Tols kF64{1e-12, 1e-10, kF64StepNormwise, 1e-10, 1e-12};

void compare_steps(const StepResult& dev_r, const StepResult& cpu_r, const Tols& t) {
  CHECK(normwise_error(dev_r.logits, cpu_r.logits) <= t.logits_normwise);
  CHECK(normwise_error(dev_r.loss, cpu_r.loss) <= t.logits_normwise);
  CHECK(normwise_error(dev_r.input_grad, cpu_r.input_grad) <= t.grad_normwise);
  double worst = 0;
  std::string worst_name;
  for (auto& [n, g] : cpu_r.grads) {
    CAPTURE(n);
    double e = normwise_error(dev_r.grads.at(n), g);
    if (e > worst) worst = e, worst_name = n;
    CHECK(e <= t.grad_normwise);
    CHECK(normwise_error(dev_r.params.at(n), cpu_r.params.at(n)) <= t.param_normwise);
  }
  MESSAGE("worst gradient norm-wise error " << worst << " at " << worst_name);
  for (auto& [n, b] : cpu_r.buffers) {
    CAPTURE(n);
    if (b.dtype() == DType::i64) CHECK(dev_r.buffers.at(n).to_vector<int64_t>() == b.to_vector<int64_t>());
    else CHECK_CLOSE(dev_r.buffers.at(n), b, t.buffer_rtol, t.buffer_atol);
  }
}

}  // namespace

TEST_CASE("tiny ResNet-18: forward + backward + Adam step on the device == CPU (fp32)") {
  StepResult c = train_step("resnet18", "tiny_resnet18.safetensors", "tiny_resnet18_ref.safetensors", 10, Device::cpu());
  StepResult g = train_step("resnet18", "tiny_resnet18.safetensors", "tiny_resnet18_ref.safetensors", 10, gpu(),
                            DType::f32, MemoryFormat::contiguous, nullptr, &c.grads);
  compare_steps(g, c, kF32);
}

// A channels-last input keeps every activation channels-last on the device (NHWC cuDNN descriptors,
// KRSC filters, NHWC batch norm and pooling); the CPU computes in NCHW.
TEST_CASE("tiny ResNet-18 with channels-last activations on the device == CPU (fp32)") {
  StepResult c = train_step("resnet18", "tiny_resnet18.safetensors", "tiny_resnet18_ref.safetensors", 10, Device::cpu());
  StepResult g = train_step("resnet18", "tiny_resnet18.safetensors", "tiny_resnet18_ref.safetensors", 10, gpu(),
                            DType::f32, MemoryFormat::channels_last, nullptr, &c.grads);
  CHECK(g.input_grad.is_contiguous(MemoryFormat::channels_last));
  compare_steps(g, c, kF32);
}

// rtune train's CUDA fp32 path: master weights stay NCHW fp32, each conv casts its weight to KRSC per
// call (differentiably: the KRSC weight gradient comes back NCHW), activations are channels-last.
TEST_CASE("tiny ResNet-18 under fp32 channels-last autocast on the device == CPU (fp32)") {
  StepResult c = train_step("resnet18", "tiny_resnet18.safetensors", "tiny_resnet18_ref.safetensors", 10, Device::cpu());
  const nn::ComputeMode mode{DType::f32, MemoryFormat::channels_last};
  StepResult g = train_step("resnet18", "tiny_resnet18.safetensors", "tiny_resnet18_ref.safetensors", 10, gpu(),
                            DType::f32, MemoryFormat::contiguous, &mode, &c.grads);
  for (auto& [n, grad] : g.grads) {
    CAPTURE(n);
    CHECK(grad.dtype() == DType::f32);
    CHECK(grad.is_contiguous());
  }
  compare_steps(g, c, kF32);
}

// bf16 mixed precision (torch.autocast style): bf16 convs/linear on bf16-rounded weights, fp32 BN
// statistics, fp32 loss, fp32 master weights and gradients. The tiny models are ill-conditioned: bf16
// rounding alone moves PyTorch's own gradients by up to 128% (ResNet-18) norm-wise, and ResNet-50's
// logits by 31% (tests/gen/make_bf16_reference.py measures torch.autocast's bf16 step against its
// fp32 step). Each of our tensors is held to twice PyTorch's own deviation plus 1e-2.
void check_bf16_step(const char* arch, const char* weights, const char* ref_file, int64_t classes) {
  std::ifstream f(test::fixture(fmt::format("tiny_{}_bf16_deviation.json", arch)));
  REQUIRE(f.good());
  const nlohmann::json torch_dev = nlohmann::json::parse(f);
  StepResult c = train_step(arch, weights, ref_file, classes, Device::cpu());
  const nn::ComputeMode mode{DType::bf16, MemoryFormat::channels_last};
  StepResult g = train_step(arch, weights, ref_file, classes, gpu(), DType::f32, MemoryFormat::contiguous, &mode);
  CHECK(g.logits.dtype() == DType::f32);
  auto bound = [](double torch_err) { return 2 * torch_err + 1e-2; };
  const double e_logits = normwise_error(g.logits, c.logits), e_gx = normwise_error(g.input_grad, c.input_grad);
  MESSAGE(std::string(arch) << " bf16 vs fp32 norm-wise: logits " << e_logits << " (torch " << torch_dev["logits"].get<double>()
                << "), input grad " << e_gx << " (torch " << torch_dev["input_grad"].get<double>() << ")");
  CHECK(e_logits <= bound(torch_dev["logits"]));
  CHECK(normwise_error(g.loss, c.loss) <= bound(torch_dev["loss"]));
  CHECK(e_gx <= bound(torch_dev["input_grad"]));
  double worst_ratio = 0;
  std::string worst;
  for (auto& [n, grad] : g.grads) {
    CAPTURE(n);
    REQUIRE(torch_dev["grad"].contains(n));
    CHECK(g.params.at(n).dtype() == DType::f32);
    CHECK(grad.dtype() == DType::f32);
    const double e = normwise_error(grad, c.grads.at(n)), t = torch_dev["grad"][n].get<double>();
    if (e / bound(t) > worst_ratio) worst_ratio = e / bound(t), worst = n;
    CHECK(e <= bound(t));
  }
  MESSAGE("worst gradient: " << worst << " at " << worst_ratio << " of its bound");
  for (auto& [n, b] : c.buffers) {  // BN statistics are fp32 sums of bf16 activations
    CAPTURE(n);
    if (b.dtype() == DType::i64) CHECK(g.buffers.at(n).to_vector<int64_t>() == b.to_vector<int64_t>());
    else CHECK(normwise_error(g.buffers.at(n), b) <= bound(torch_dev["buffer"][n].get<double>()));
  }
}

TEST_CASE("tiny ResNet-18 bf16 mixed precision on the device deviates from fp32 no more than torch.autocast does") {
  check_bf16_step("resnet18", "tiny_resnet18.safetensors", "tiny_resnet18_ref.safetensors", 10);
}

TEST_CASE("tiny ResNet-50 bf16 mixed precision on the device deviates from fp32 no more than torch.autocast does") {
  check_bf16_step("resnet50", "tiny_resnet50.pth", "tiny_resnet50_ref.safetensors", 7);
}

// float64 removes the conditioning question: device and CPU agree to rounding.
TEST_CASE("tiny ResNet-50: forward + backward + Adam step on the device == CPU (fp64)") {
  StepResult c = train_step("resnet50", "tiny_resnet50.pth", "tiny_resnet50_ref.safetensors", 7, Device::cpu(), DType::f64);
  StepResult g = train_step("resnet50", "tiny_resnet50.pth", "tiny_resnet50_ref.safetensors", 7, gpu(), DType::f64,
                            MemoryFormat::contiguous, nullptr, &c.grads);
  compare_steps(g, c, kF64);
}

// float32: layer4's BN sees 12 values per channel (batch 3 at 64 px), so rounding differences grow to
// ~1% norm-wise in layer4's gradients (PyTorch's own f32 vs f64 differs by up to 1.8%): gradients at 5%
// norm-wise as tests/models/test_resnet_parity.cpp; the Adam step on the same gradients as above.
TEST_CASE("tiny ResNet-50: forward + backward + Adam step on the device == CPU (fp32)") {
  StepResult c = train_step("resnet50", "tiny_resnet50.pth", "tiny_resnet50_ref.safetensors", 7, Device::cpu());
  StepResult g = train_step("resnet50", "tiny_resnet50.pth", "tiny_resnet50_ref.safetensors", 7, gpu(), DType::f32,
                            MemoryFormat::contiguous, nullptr, &c.grads);
  compare_steps(g, c, Tols{1e-4, 5e-2, kF32StepNormwise, 1e-3, 1e-5});
}

// ------------------------------------------------------------------- the 3-step training fixtures

namespace {
struct Trajectory {
  std::vector<double> losses;
  std::map<std::string, Tensor> params, buffers;
};

Trajectory run_recipe(const test::Recipe& r, Device d) {
  auto model = make_model("resnet18", "tiny_resnet18.safetensors", 10, d);
  model->train();
  Trajectory t;
  t.losses = test::run_three_steps(r, *model, DType::f32, d);
  for (auto& [n, p] : model->named_parameters()) t.params[n] = p->cpu();
  for (auto& [n, b] : model->named_buffers()) t.buffers[n] = b->cpu();
  return t;
}

void check_recipe(const test::Recipe& r) {
  io::SafetensorsFile ref = io::SafetensorsFile::open(test::fixture(r.fixture));
  Trajectory g = run_recipe(r, gpu()), c = run_recipe(r, Device::cpu());
  CHECK_CLOSE(g.losses, c.losses, 1e-5, 1e-6);
  CHECK_CLOSE(g.losses, ref_tensor(ref, "losses").to_vector<double>(), 1e-3, 1e-5);
  for (auto& [name, p] : g.params) {
    CAPTURE(name);
    CHECK(normwise_error(p, c.params.at(name)) <= 1e-5);
    CHECK(normwise_error(p, ref_tensor(ref, "param." + name)) <= 1e-3);
  }
  for (auto& [name, b] : g.buffers) {
    CAPTURE(name);
    Tensor expect = ref_tensor(ref, "buffer." + name);
    if (b.dtype() == DType::i64) CHECK(b.to_vector<int64_t>() == expect.to_vector<int64_t>());
    else CHECK_CLOSE(b, expect, 1e-3, 1e-5);
  }
}

}  // namespace

TEST_CASE("3 steps on the device (fp32): fc only, Adam(lr=1e-3, wd=1e-4)") { check_recipe(test::fc_adam_recipe()); }

TEST_CASE("3 steps on the device (fp32): all layers, SGD nesterov + clip_grad_norm_(1.0)") {
  check_recipe(test::sgd_nesterov_clipnorm_recipe());
}

TEST_CASE("3 steps on the device (fp32): layer4 + fc, AdamW + clip_grad_value_(0.1)") {
  check_recipe(test::layer4fc_adamw_clipvalue_recipe());
}

TEST_CASE("one GPU per process: a tensor on another cuda:N than the process's is refused, naming both") {
  Tensor here = zeros({2}, {DType::f32, Device::cuda(0)});  // the process drives cuda:0 (its first allocation)
  try {
    zeros({2}, {DType::f32, Device::cuda(1)});
    FAIL("a second device was accepted");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("cuda:1: this process already drives cuda:0; rtune uses one GPU per process") !=
          std::string::npos);
  }
  CHECK(here.device() == Device::cuda(0));
}

// Frozen eval-mode BN folded into the convolutions (nn::conv_bn; CPU cases and the tolerance's
// derivation in tests/models/test_bn_folding.cpp): on the device too the folded network equals the
// unfolded one, in fp32 (NCHW and channels-last) and f64, and under bf16 channels-last autocast within
// bf16 rounding; the input gradient through the folded convs matches.
TEST_CASE("frozen eval tiny ResNet-50 on the device: BN folded into the convs == unfolded") {
  for (DType dt : {DType::f32, DType::f64}) {
    auto m = std::make_shared<models::ResNet>(models::ResNetConfig{"resnet50", 8, 7});
    m->to(dt);
    finetune::load_weights(*m, finetune::read_weight_file(test::fixture("tiny_resnet50.pth")).tensors);
    {
      NoGradGuard ng;
      Rng r(5);
      for (auto& [n, mod] : m->named_modules())
        if (auto* b = dynamic_cast<nn::BatchNorm2d*>(mod)) {
          b->running_mean.copy_(mul(randn(b->weight.shape(), r, {dt}), 0.3));
          b->running_var.copy_(uniform(b->weight.shape(), 0.3, 2.0, r, {dt}));
        }
    }
    for (auto& [n, p] : m->named_parameters()) p->set_requires_grad(false);
    m->eval();
    m->to(gpu());
    auto set_fold = [&](bool on) {
      for (auto& [n, mod] : m->named_modules())
        if (auto* b = dynamic_cast<nn::BatchNorm2d*>(mod)) b->allow_fold = on;
    };
    Rng r(9);
    Tensor x0 = randn({2, 3, 64, 64}, r, {dt});
    Tensor probe = randn({2, 7}, r, {dt}).to(gpu());
    auto run = [&](bool fold, MemoryFormat fmt, const nn::ComputeMode* mode) {
      set_fold(fold);
      Tensor x = x0.to(gpu()).contiguous(fmt);
      x.set_requires_grad(true);
      Tensor y;
      {
        std::unique_ptr<nn::Autocast> ac = mode ? std::make_unique<nn::Autocast>(*mode) : nullptr;
        y = cast(m->forward(x), dt);
      }
      sum(mul(y, probe)).backward();
      set_fold(true);
      return std::make_pair(y.detach().cpu(), x.grad().cpu());
    };
    double tol = dt == DType::f64 ? 1e-12 : 1e-4;
    for (MemoryFormat fmt : {MemoryFormat::contiguous, MemoryFormat::channels_last}) {
      auto [yf, gf] = run(true, fmt, nullptr);
      auto [yp, gp] = run(false, fmt, nullptr);
      CHECK(normwise_error(yf, yp) <= tol);
      CHECK(normwise_error(gf, gp) <= tol);
    }
    if (dt == DType::f32) {
      // bf16: each folded weight and bias is rounded to bf16 (u = 2^-8) where the unfolded path rounds
      // the conv output and BN output instead; both deviate from fp32 by O(u) per layer.
      const nn::ComputeMode bf16{DType::bf16, MemoryFormat::channels_last};
      auto [yf, gf] = run(true, MemoryFormat::channels_last, &bf16);
      auto [yp, gp] = run(false, MemoryFormat::channels_last, &bf16);
      auto [y32, g32] = run(false, MemoryFormat::contiguous, nullptr);
      double ef = normwise_error(yf, y32), ep = normwise_error(yp, y32);
      MESSAGE("bf16 vs fp32 logits: folded " << ef << ", unfolded " << ep);
      CHECK(ef <= std::max(2.0 * ep, 2e-2));
      CHECK(normwise_error(gf, g32) <= std::max(2.0 * normwise_error(gp, g32), 2e-2));
    }
  }
}
