// Three training steps of the tiny ResNet-18 in float64 against PyTorch's trajectories: losses, every
// parameter (frozen ones bit-identical to the start) and every BN buffer. Covers Adam (fc only),
// SGD nesterov + clip_grad_norm_ (all layers), AdamW + clip_grad_value_ (layer4 + fc).
#include <functional>
#include "engine/autograd.h"
#include "engine/functional.h"
#include "engine/optim/optimizer.h"
#include "io/safetensors.h"
#include "models/weights.h"
#include "tests/core/test_util.h"

using namespace rtune;

namespace {
Tensor ref_tensor(const io::SafetensorsFile& f, const std::string& name) {
  const io::SafetensorsView& v = f.at(name);
  return from_bytes(v.bytes.data(), v.bytes.size(), v.shape, v.dtype);
}

struct Recipe {
  const char* fixture;
  std::function<bool(const std::string&)> trainable;
  std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor*>)> make_opt;
  double clip_norm = 0, clip_value = 0;
};

void run_recipe(const Recipe& r) {
  io::SafetensorsFile inputs = io::SafetensorsFile::open(test::fixture("tiny_resnet18_steps_inputs.safetensors"));
  io::SafetensorsFile ref = io::SafetensorsFile::open(test::fixture(r.fixture));
  models::ResNet model({"resnet18", 8, 10});
  model.to(DType::f64);
  models::load_weights(model, models::read_weight_file(test::fixture("tiny_resnet18.safetensors")).tensors);
  std::vector<Tensor*> trainable;
  std::map<std::string, std::vector<double>> frozen_start;
  for (auto& [name, p] : model.named_parameters()) {
    if (r.trainable(name)) {
      trainable.push_back(p);
    } else {
      p->set_requires_grad(false);
      frozen_start[name] = p->to_vector<double>();
    }
  }
  auto opt = r.make_opt(trainable);
  model.train();
  std::vector<double> losses;
  for (int s = 0; s < 3; ++s) {
    opt->zero_grad();
    Tensor x = ref_tensor(inputs, fmt::format("step{}.input", s)).to(DType::f64);
    Tensor loss = cross_entropy(model.forward(x), ref_tensor(inputs, fmt::format("step{}.target", s)));
    loss.backward();
    if (r.clip_norm > 0) optim::clip_grad_norm(trainable, r.clip_norm);
    if (r.clip_value > 0) optim::clip_grad_value(trainable, r.clip_value);
    opt->step();
    losses.push_back(loss.item<double>());
  }
  CHECK_CLOSE(losses, ref_tensor(ref, "losses").to_vector<double>(), 1e-10, 1e-12);
  for (auto& [name, p] : model.named_parameters()) {
    CAPTURE(name);
    if (frozen_start.count(name)) {
      CHECK(p->to_vector<double>() == frozen_start[name]);  // bit-identical
      CHECK_FALSE(p->grad().defined());
    }
    CHECK_CLOSE(*p, ref_tensor(ref, "param." + name), 1e-9, 1e-12);
  }
  for (auto& [name, b] : model.named_buffers()) {
    CAPTURE(name);
    Tensor expect = ref_tensor(ref, "buffer." + name);
    if (b->dtype() == DType::i64) CHECK(b->to_vector<int64_t>() == expect.to_vector<int64_t>());
    else CHECK_CLOSE(*b, expect, 1e-9, 1e-12);
  }
}

optim::ParamGroup group(std::vector<Tensor*> ps, double lr, double wd, double momentum) {
  optim::ParamGroup g;
  g.name = "all";
  g.params = std::move(ps);
  g.lr = lr;
  g.weight_decay = wd;
  g.momentum = momentum;
  return g;
}
}  // namespace

TEST_CASE("3 steps: fc only, Adam(lr=1e-3, wd=1e-4)") {
  run_recipe({"tiny_resnet18_fc_adam_3steps.safetensors",
              [](const std::string& n) { return n.rfind("fc.", 0) == 0; },
              [](std::vector<Tensor*> ps) {
                return std::make_unique<optim::Adam>(std::vector{group(ps, 1e-3, 1e-4, 0.9)});
              }});
}

TEST_CASE("3 steps: all layers, SGD(lr=0.05, momentum=0.9, nesterov, wd=5e-4) + clip_grad_norm_(1.0)") {
  run_recipe({"tiny_resnet18_full_sgd_nesterov_clipnorm_3steps.safetensors", [](const std::string&) { return true; },
              [](std::vector<Tensor*> ps) {
                return std::make_unique<optim::SGD>(std::vector{group(ps, 0.05, 5e-4, 0.9)}, 0.0, true);
              },
              1.0, 0});
}

TEST_CASE("3 steps: layer4 + fc, AdamW(lr=2e-3, wd=1e-2) + clip_grad_value_(0.1)") {
  run_recipe({"tiny_resnet18_layer4fc_adamw_clipvalue_3steps.safetensors",
              [](const std::string& n) { return n.rfind("layer4.", 0) == 0 || n.rfind("fc.", 0) == 0; },
              [](std::vector<Tensor*> ps) {
                return std::make_unique<optim::Adam>(std::vector{group(ps, 2e-3, 1e-2, 0.9)}, 0.999, 1e-8, false, true);
              },
              0, 0.1});
}
