// The three 3-step training fixtures of tests/fixtures (tiny ResNet-18, recorded by PyTorch): which
// parameters train, the optimizer and the clipping of each, and the loop that replays the fixture's
// inputs. Shared by the float64 CPU parity test (tests/train/test_three_steps.cpp) and the device
// test (tests/cuda/test_cuda_models.cpp).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>
#include <fmt/format.h>
#include "engine/functional.h"
#include "engine/optim/optimizer.h"
#include "io/formats/safetensors.h"
#include "models/resnet.h"
#include "tests/core/test_util.h"

namespace rtune::test {

inline Tensor ref_tensor(const io::SafetensorsFile& f, const std::string& name) {
  const io::SafetensorsView& v = f.at(name);
  return from_bytes(v.bytes.data(), v.bytes.size(), v.shape, v.dtype);
}

struct Recipe {
  const char* fixture;
  std::function<bool(const std::string&)> trainable;
  std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor*>)> make_opt;
  double clip_norm = 0, clip_value = 0;
};

inline optim::ParamGroup one_group(std::vector<Tensor*> ps, double lr, double wd, double momentum) {
  optim::ParamGroup g;
  g.name = "all";
  g.params = std::move(ps);
  g.lr = lr;
  g.weight_decay = wd;
  g.momentum = momentum;
  return g;
}

// fc only, Adam(lr=1e-3, wd=1e-4).
inline Recipe fc_adam_recipe() {
  return {"tiny_resnet18_fc_adam_3steps.safetensors", [](const std::string& n) { return n.rfind("fc.", 0) == 0; },
          [](std::vector<Tensor*> ps) { return std::make_unique<optim::Adam>(std::vector{one_group(ps, 1e-3, 1e-4, 0.9)}); }};
}
// All layers, SGD(lr=0.05, momentum=0.9, nesterov, wd=5e-4) + clip_grad_norm_(1.0).
inline Recipe sgd_nesterov_clipnorm_recipe() {
  return {"tiny_resnet18_full_sgd_nesterov_clipnorm_3steps.safetensors", [](const std::string&) { return true; },
          [](std::vector<Tensor*> ps) {
            return std::make_unique<optim::SGD>(std::vector{one_group(ps, 0.05, 5e-4, 0.9)}, 0.0, true);
          },
          1.0, 0};
}
// layer4 + fc, AdamW(lr=2e-3, wd=1e-2) + clip_grad_value_(0.1).
inline Recipe layer4fc_adamw_clipvalue_recipe() {
  return {"tiny_resnet18_layer4fc_adamw_clipvalue_3steps.safetensors",
          [](const std::string& n) { return n.rfind("layer4.", 0) == 0 || n.rfind("fc.", 0) == 0; },
          [](std::vector<Tensor*> ps) {
            return std::make_unique<optim::Adam>(std::vector{one_group(ps, 2e-3, 1e-2, 0.9)}, 0.999, 1e-8, false, true);
          },
          0, 0.1};
}

// Freezes what `r` does not train, then runs the fixture's three steps on `model` (loaded, in train
// mode, on `device` with parameters of `dtype`); returns the losses.
inline std::vector<double> run_three_steps(const Recipe& r, models::ResNet& model, DType dtype, Device device) {
  io::SafetensorsFile inputs = io::SafetensorsFile::open(fixture("tiny_resnet18_steps_inputs.safetensors"));
  std::vector<Tensor*> trainable;
  for (auto& [name, p] : model.named_parameters()) {
    if (r.trainable(name)) trainable.push_back(p);
    else p->set_requires_grad(false);
  }
  auto opt = r.make_opt(trainable);
  std::vector<double> losses;
  for (int s = 0; s < 3; ++s) {
    opt->zero_grad();
    Tensor x = ref_tensor(inputs, fmt::format("step{}.input", s)).to(dtype).to(device);
    Tensor loss = cross_entropy(model.forward(x), ref_tensor(inputs, fmt::format("step{}.target", s)).to(device));
    loss.backward();
    if (r.clip_norm > 0) optim::clip_grad_norm(trainable, r.clip_norm);
    if (r.clip_value > 0) optim::clip_grad_value(trainable, r.clip_value);
    opt->step();
    losses.push_back(loss.cpu().to(DType::f64).item<double>());
  }
  return losses;
}

}  // namespace rtune::test
