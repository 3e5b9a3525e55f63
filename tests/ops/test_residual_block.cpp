// A ResNet basic block built from the ops (conv2d, batch_norm, relu, add) with a 1×1 downsample
// shortcut: one float64 central-difference gradient check through the whole composition.
#include "engine/functional.h"
#include "tests/ops/ops_test_util.h"

using namespace rtune;
using namespace rtune::opstest;

TEST_CASE("gradcheck a residual block: conv-bn-relu-conv-bn + shortcut, relu") {
  Rng r(81);
  Tensor x = rn({2, 3, 6, 5}, r), w1 = rn({4, 3, 3, 3}, r), w2 = rn({4, 4, 3, 3}, r), wd = rn({4, 3, 1, 1}, r);
  Tensor g1 = rn({4}, r), b1 = rn({4}, r), g2 = rn({4}, r), b2 = rn({4}, r);
  CHECK_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        Tensor m1 = zeros({4}, {DType::f64}), v1 = ones({4}, {DType::f64}), m2 = m1.clone(), v2 = v1.clone();
        Tensor h = relu(batch_norm(conv2d(in[0], in[1], Tensor(), {2, 2, 1, 1}), in[4], in[5], m1, v1, true, 0.1, 1e-5));
        Tensor o = batch_norm(conv2d(h, in[2], Tensor(), {1, 1, 1, 1}), in[6], in[7], m2, v2, true, 0.1, 1e-5);
        Tensor s = conv2d(in[0], in[3], Tensor(), {2, 2, 0, 0});
        return relu(add(o, s));
      },
      {x, w1, w2, wd, g1, b1, g2, b2}, {true, true, true, true, true, true, true, true}, 82, {1e-6, 1e-5, 1e-7});
}
