// Three training steps of the tiny ResNet-18 in float64 against PyTorch's trajectories: losses, every
// parameter (frozen ones bit-identical to the start) and every BN buffer. Covers Adam (fc only),
// SGD nesterov + clip_grad_norm_ (all layers), AdamW + clip_grad_value_ (layer4 + fc).
#include <functional>
#include "engine/autograd.h"
#include "engine/functional.h"
#include "engine/optim/optimizer.h"
#include "io/formats/safetensors.h"
#include "finetune/weights.h"
#include "tests/core/test_util.h"
#include "tests/train/three_step_recipes.h"

using namespace rtune;

namespace {

using test::ref_tensor;

void run_recipe(const test::Recipe& r) {
  io::SafetensorsFile ref = io::SafetensorsFile::open(test::fixture(r.fixture));
  models::ResNet model({"resnet18", 8, 10});
  model.to(DType::f64);
  finetune::load_weights(model, finetune::read_weight_file(test::fixture("tiny_resnet18.safetensors")).tensors);
  std::map<std::string, std::vector<double>> frozen_start;
  for (auto& [name, p] : model.named_parameters())
    if (!r.trainable(name)) frozen_start[name] = p->to_vector<double>();
  model.train();
  std::vector<double> losses = test::run_three_steps(r, model, DType::f64, Device::cpu());
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

}  // namespace

TEST_CASE("3 steps: fc only, Adam(lr=1e-3, wd=1e-4)") { run_recipe(test::fc_adam_recipe()); }

TEST_CASE("3 steps: all layers, SGD(lr=0.05, momentum=0.9, nesterov, wd=5e-4) + clip_grad_norm_(1.0)") {
  run_recipe(test::sgd_nesterov_clipnorm_recipe());
}

TEST_CASE("3 steps: layer4 + fc, AdamW(lr=2e-3, wd=1e-2) + clip_grad_value_(0.1)") {
  run_recipe(test::layer4fc_adamw_clipvalue_recipe());
}
