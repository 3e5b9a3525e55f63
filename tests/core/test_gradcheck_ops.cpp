// Float64 central-difference gradient checks for every differentiable op, for every input that has a
// gradient: odd sizes, stride 2, padding, dilation, 1×1 convolutions, non-contiguous and channels-last
// inputs. Fixed eps = 1e-6; tolerance |a-b| <= 1e-7 + 1e-6*|ref| (see GradcheckOptions); a random
// probe weights the output.
#include "engine/functional.h"
#include "tests/core/test_util.h"

using namespace rtune;
using rtune::test::gradcheck;

namespace {
Tensor rn(const Shape& s, Rng& r) { return randn(s, r, {DType::f64}); }
}  // namespace

TEST_CASE("gradcheck conv2d: geometry table") {
  struct Case {
    Shape x, w;
    Conv2dArgs a;
    bool bias;
    const char* what;
  };
  const Case cases[] = {
      {{2, 3, 7, 6}, {4, 3, 3, 3}, {1, 1, 1, 1, 1, 1}, true, "3x3 same padding, odd sizes"},
      {{2, 3, 9, 7}, {5, 3, 3, 3}, {2, 2, 1, 1, 1, 1}, false, "3x3 stride 2 (ResNet downsampling)"},
      {{1, 2, 11, 10}, {3, 2, 7, 7}, {2, 2, 3, 3, 1, 1}, false, "7x7 stride 2 pad 3 (ResNet stem)"},
      {{3, 4, 5, 5}, {6, 4, 1, 1}, {1, 1, 0, 0, 1, 1}, true, "1x1 pointwise"},
      {{2, 4, 7, 7}, {3, 4, 1, 1}, {2, 2, 0, 0, 1, 1}, false, "1x1 stride 2 (downsample branch)"},
      {{1, 2, 9, 8}, {2, 2, 3, 2}, {1, 2, 2, 0, 2, 1}, true, "rectangular kernel, dilation 2, asymmetric"},
  };
  uint64_t seed = 1;
  for (const Case& c : cases) {
    CAPTURE(c.what);
    Rng r(seed++);
    Tensor x = rn(c.x, r), w = rn(c.w, r), b = c.bias ? rn({c.w[0]}, r) : Tensor();
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], c.a); }, {x, w, b},
                    {true, true, c.bias}, seed);
  }
}

TEST_CASE("gradcheck conv2d: non-contiguous and channels-last inputs") {
  Rng r(11);
  Tensor base = rn({2, 5, 6, 3}, r);             // N H W C in memory
  Tensor x_perm = base.permute({0, 3, 1, 2});     // N C H W view with channels-last strides
  CHECK(x_perm.is_contiguous(MemoryFormat::channels_last));
  Tensor w = rn({4, 3, 3, 3}, r);
  Conv2dArgs a{2, 1, 1, 0, 1, 1};
  CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], Tensor(), a); }, {x_perm, w},
                  {true, true}, 12);
  Tensor wide = rn({2, 3, 5, 12}, r);
  Tensor x_narrow = wide.narrow(3, 2, 6);  // strided along W
  CHECK_FALSE(x_narrow.is_contiguous());
  CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], Tensor(), a); }, {x_narrow, w},
                  {true, true}, 13);
}

TEST_CASE("gradcheck batch_norm: train and eval, affine and not") {
  Rng r(21);
  for (bool training : {true, false})
    for (bool affine : {true, false}) {
      CAPTURE(training);
      CAPTURE(affine);
      Tensor x = rn({3, 4, 5, 3}, r);
      Tensor w = affine ? rn({4}, r) : Tensor(), b = affine ? rn({4}, r) : Tensor();
      Tensor rm = rn({4}, r), rv = add(mul(rand({4}, r, {DType::f64}), 1.0), full({4}, 0.5, {DType::f64}));
      CHECK_GRADCHECK(
          [&](const std::vector<Tensor>& in) {
            Tensor m = rm.clone(), v = rv.clone();  // fresh stats each call: train mode updates them
            return batch_norm(in[0], in[1], in[2], m, v, training, 0.1, 1e-5);
          },
          {x, w, b}, {true, affine, affine}, 22);
    }
}

TEST_CASE("gradcheck relu, max_pool2d, adaptive_avg_pool2d") {
  Rng r(31);
  Tensor x = test::randn_away_from_zero({2, 3, 5, 4}, r);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return relu(in[0]); }, {x}, {true}, 32);

  // Distinct values so the max in each window is unique by far more than eps.
  std::vector<double> v(2 * 3 * 9 * 7);
  std::vector<int64_t> perm = r.permutation(int64_t(v.size()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.01 * double(perm[i]) - 1.0;
  Tensor xp = from_vector(v, {2, 3, 9, 7}, DType::f64);
  for (Pool2dArgs a : {Pool2dArgs{3, 3, 2, 2, 1, 1}, Pool2dArgs{2, 2, 2, 2, 0, 0}, Pool2dArgs{3, 2, 1, 2, 1, 0}}) {
    CAPTURE(a.kernel_h);
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return max_pool2d(in[0], a); }, {xp}, {true}, 33);
  }
  Tensor xa = rn({2, 3, 7, 5}, r);
  for (auto [oh, ow] : {std::pair{1, 1}, {3, 2}, {7, 5}, {4, 4}}) {
    CAPTURE(oh);
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], oh, ow); }, {xa}, {true},
                    34);
  }
}

TEST_CASE("gradcheck linear (with and without bias, transposed input view)") {
  Rng r(41);
  Tensor x = rn({5, 7}, r), w = rn({3, 7}, r), b = rn({3}, r);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {x, w, b},
                  {true, true, true}, 42);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return linear(in[0], in[1], Tensor()); }, {x, w},
                  {true, true}, 43);
  Tensor xt = rn({7, 5}, r).transpose(0, 1);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {xt, w, b},
                  {true, true, true}, 44);
}

TEST_CASE("gradcheck elementwise and reductions") {
  Rng r(51);
  Tensor a = rn({3, 5}, r), b = rn({3, 5}, r);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return add(in[0], in[1]); }, {a, b}, {true, true}, 52);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return sub(in[0], in[1]); }, {a, b}, {true, true}, 53);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return mul(in[0], in[1]); }, {a, b}, {true, true}, 54);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return mul(in[0], -2.5); }, {a}, {true}, 55);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return sum(in[0]); }, {a}, {true}, 56);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return mean(in[0]); }, {a}, {true}, 57);
  // The same tensor used twice: gradients from both uses accumulate.
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return mul(in[0], in[0]); }, {a}, {true}, 58);
}

TEST_CASE("gradcheck add_relu: both inputs, channels-last and strided, one tensor used twice") {
  Rng r(56);
  // b = s - a with |s| >= 0.05, so a + b stays 5e4·eps away from relu's kink while a and b are independent.
  Tensor a = rn({2, 3, 5, 4}, r);
  Tensor s = test::randn_away_from_zero({2, 3, 5, 4}, r);
  Tensor b = from_vector([&] {
    std::vector<double> sv = s.to_vector<double>(), av = a.to_vector<double>();
    for (size_t i = 0; i < sv.size(); ++i) sv[i] -= av[i];
    return sv;
  }(), a.shape(), DType::f64);
  // Layout variants made before gradcheck marks a and b as requiring grad (it sets the flag in place).
  Tensor a_cl = a.contiguous(MemoryFormat::channels_last), b_wide = zeros({2, 3, 5, 7}, {DType::f64});
  b_wide.narrow(3, 2, 4).copy_(b);
  Tensor b_strided = b_wide.narrow(3, 2, 4);
  CHECK_FALSE(b_strided.is_contiguous());
  auto f = [](const std::vector<Tensor>& in) { return add_relu(in[0], in[1]); };
  CHECK_GRADCHECK(f, {a_cl, b_strided}, {true, true}, 59);
  CHECK_GRADCHECK(f, {a, b}, {false, true}, 58);  // only one input needs a gradient
  CHECK_GRADCHECK(f, {a, b}, {true, true}, 57);
  Tensor x = test::randn_away_from_zero({3, 7}, r);  // x + x = 2x: away from 0 as x is
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return add_relu(in[0], in[0]); }, {x}, {true}, 60);
}

TEST_CASE("gradcheck softmax, log_softmax, cross_entropy (mean, sum, label smoothing)") {
  Rng r(61);
  Tensor x = rn({4, 6}, r);
  Tensor t = from_vector_i64({5, 0, 3, 3}, {4});
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return softmax(in[0]); }, {x}, {true}, 62);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return log_softmax(in[0]); }, {x}, {true}, 63);
  for (Reduction red : {Reduction::mean, Reduction::sum})
    for (double ls : {0.0, 0.1}) {
      CAPTURE(ls);
      CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t, ls, red); }, {x}, {true},
                      64);
    }
}

TEST_CASE("gradcheck views: view, reshape, flatten, permute, transpose, narrow, select, expand, unsqueeze") {
  Rng r(71);
  Tensor x = rn({2, 3, 4}, r);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].view({6, 4}); }, {x}, {true}, 72);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].permute({2, 0, 1}).reshape({4, 6}); }, {x},
                  {true}, 73);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].flatten(1); }, {x}, {true}, 74);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].transpose(0, 2).contiguous(); }, {x}, {true}, 75);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].narrow(1, 1, 2); }, {x}, {true}, 76);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].select(2, 3); }, {x}, {true}, 77);
  Tensor y = rn({3, 1}, r);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].expand({2, 3, 5}).contiguous(); }, {y}, {true}, 78);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].unsqueeze(0).squeeze(0); }, {y}, {true}, 79);
}

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
