// train_ddp_parity (issue 20), run by ctest as `mpirun -np 2`: rtune's two MPI ranks replay PyTorch
// DDP's (gloo, 2 processes, tests/gen/make_ddp_reference.py) three steps of the tiny ResNet-18 in
// float64 -- each rank half of every batch, per-rank BatchNorm, gradients averaged by
// finetune::GradientAverager (the trainer's), SGD nesterov + clip_grad_norm_(1.0) -- and must end at
// DDP's parameters and rank 0's buffers. Float64 both sides: only summation order differs (1e-9).
#include <doctest/doctest.h>

#include "engine/functional.h"
#include "finetune/data_parallel.h"
#include "finetune/weights.h"
#include "kernels/dist/comm.h"
#include "tests/train/three_step_recipes.h"

using namespace rtune;

TEST_CASE("2 MPI ranks = PyTorch DDP (gloo, 2 processes): 3 steps of the tiny ResNet-18, float64") {
  dist::Comm& comm = dist::world();
  REQUIRE_MESSAGE(comm.size() == 2, "run me with mpirun -np 2 (ctest does)");
  const int rank = comm.rank();
  io::SafetensorsFile ref = io::SafetensorsFile::open(test::fixture("tiny_resnet18_ddp2_3steps.safetensors"));
  io::SafetensorsFile inputs = io::SafetensorsFile::open(test::fixture("tiny_resnet18_steps_inputs.safetensors"));
  models::ResNet model({"resnet18", 8, 10});
  model.to(DType::f64);
  finetune::load_weights(model, finetune::read_weight_file(test::fixture("tiny_resnet18.safetensors")).tensors);
  model.train();
  const test::Recipe r = test::sgd_nesterov_clipnorm_recipe();
  std::vector<Tensor*> params;
  for (auto& [name, p] : model.named_parameters()) params.push_back(p);
  auto opt = r.make_opt(params);
  finetune::GradientAverager grads(comm, DType::f64, Device::cpu());
  grads.set_params(params);
  const std::vector<double> want = test::ref_tensor(ref, fmt::format("losses.rank{}", rank)).to_vector<double>();
  const std::vector<double> other = test::ref_tensor(ref, fmt::format("losses.rank{}", 1 - rank)).to_vector<double>();
  for (int s = 0; s < 3; ++s) {
    opt->zero_grad();
    Tensor x = test::ref_tensor(inputs, fmt::format("step{}.input", s)).narrow(0, 2 * rank, 2).contiguous().to(DType::f64);
    Tensor y = test::ref_tensor(inputs, fmt::format("step{}.target", s)).narrow(0, 2 * rank, 2).contiguous();
    Tensor loss = cross_entropy(model.forward(x), y);
    loss.backward();
    const double mean_loss = grads.average(loss).loss.item<double>();
    optim::clip_grad_norm(params, r.clip_norm);  // after the average: the global norm, as DDP's user code
    opt->step();
    CAPTURE(s);
    CHECK(loss.item<double>() == doctest::Approx(want[size_t(s)]).epsilon(1e-10));
    CHECK(mean_loss == doctest::Approx((want[size_t(s)] + other[size_t(s)]) / 2).epsilon(1e-10));
  }
  for (auto& [name, p] : model.named_parameters()) {
    CAPTURE(name);
    CHECK_CLOSE(*p, test::ref_tensor(ref, "param." + name), 1e-9, 1e-12);
  }
  finetune::broadcast_buffers(comm, model);  // what the trainer does before validating: rank 0's statistics
  for (auto& [name, b] : model.named_buffers()) {
    CAPTURE(name);
    Tensor expect = test::ref_tensor(ref, "buffer." + name);
    if (b->dtype() == DType::i64) CHECK(b->to_vector<int64_t>() == expect.to_vector<int64_t>());
    else CHECK_CLOSE(*b, expect, 1e-9, 1e-12);
  }
  dist::finalize();
}
