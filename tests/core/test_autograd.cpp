// Autograd semantics: accumulation into .grad, no_grad, zero_grad, freeing saved tensors, and the
// frozen-layer contract: no weight gradient for frozen parameters and no input gradient computed
// when nothing upstream needs it.
#include "engine/autograd.h"
#include "engine/functional.h"
#include "kernels/op_counts.h"
#include "tests/core/test_util.h"

using namespace rtune;

TEST_CASE("gradients accumulate across backward calls until zero_grad") {
  Tensor w = from_vector({1, 2, 3}, {3}, DType::f64).set_requires_grad(true);
  Tensor x = from_vector({4, 5, 6}, {3}, DType::f64);
  sum(mul(w, x)).backward();
  CHECK(w.grad().to_vector<double>() == std::vector<double>{4, 5, 6});
  sum(mul(w, x)).backward();
  CHECK(w.grad().to_vector<double>() == std::vector<double>{8, 10, 12});
  w.zero_grad();
  CHECK_FALSE(w.grad().defined());
  sum(mul(w, w)).backward();  // d(w²)/dw = 2w, through both uses
  CHECK(w.grad().to_vector<double>() == std::vector<double>{2, 4, 6});
}

TEST_CASE("no_grad records nothing; backward twice through freed saved tensors is an error") {
  Tensor w = ones({2}, {DType::f64}).set_requires_grad(true);
  {
    NoGradGuard ng;
    Tensor y = mul(w, 3.0);
    CHECK_FALSE(y.requires_grad());
    CHECK_FALSE(y.grad_fn());
  }
  Tensor loss = sum(mul(w, w));
  loss.backward();
  CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("second time"), Error);
  CHECK_THROWS_WITH_AS(ones({2}).backward(), doctest::Contains("does not require grad"), Error);
}

TEST_CASE("frozen conv layers: no weight grad, and no input grad below the first trainable layer") {
  Rng r(3);
  Tensor x = randn({2, 3, 8, 8}, r);
  Tensor w1 = randn({4, 3, 3, 3}, r);            // frozen
  Tensor w2 = randn({4, 4, 3, 3}, r);            // frozen
  Tensor w3 = randn({5, 4, 3, 3}, r).set_requires_grad(true);  // trainable head conv
  Tensor fc = randn({2, 5}, r).set_requires_grad(true);
  kernels::reset_op_counts();
  Tensor h = relu(conv2d(x, w1, Tensor(), {1, 1, 1, 1}));
  h = relu(conv2d(h, w2, Tensor(), {2, 2, 1, 1}));
  CHECK_FALSE(h.requires_grad());  // nothing recorded below the first trainable layer
  Tensor y = relu(conv2d(h, w3, Tensor(), {1, 1, 1, 1}));
  Tensor logits = linear(adaptive_avg_pool2d(y, 1, 1).flatten(1), fc, Tensor());
  cross_entropy(logits, from_vector_i64({0, 1}, {2})).backward();
  CHECK(w3.grad().defined());
  CHECK(fc.grad().defined());
  CHECK_FALSE(w1.grad().defined());
  CHECK_FALSE(w2.grad().defined());
  CHECK(kernels::op_count("conv2d_backward_weight") == 1);  // only w3
  CHECK(kernels::op_count("conv2d_backward_input") == 0);   // h needs no gradient
  CHECK(kernels::op_count("linear_backward_input") == 1);
  CHECK(kernels::op_count("linear_backward_weight") == 1);
}

TEST_CASE("a frozen linear head over a trainable input still gives the input gradient only") {
  Rng r(4);
  Tensor x = randn({3, 4}, r, {DType::f64}).set_requires_grad(true);
  Tensor w = randn({2, 4}, r, {DType::f64});
  kernels::reset_op_counts();
  sum(linear(x, w, Tensor())).backward();
  CHECK(x.grad().defined());
  CHECK(kernels::op_count("linear_backward_weight") == 0);
  CHECK(kernels::op_count("linear_backward_input") == 1);
}
