// Pooling (kernels/cpu/pool.cpp, kernels/cuda/pool.cu): max_pool2d and adaptive_avg_pool2d by hand
// and by float64 gradient checks; with a CUDA backend, the device against the CPU oracle (max-pool
// values and torch indices exact, averages 1e-6). Two cases check other ops alongside pooling, as
// they always have: the hand-computed bins case also checks linear and relu by hand, and the pooling
// gradcheck also checks relu.
#include <cmath>

#include "engine/functional.h"
#include "kernels/ops.h"
#include "tests/ops/ops_test_util.h"

using namespace rtune;
using namespace rtune::opstest;

// ----------------------------------------------------------------------------------------- forward

TEST_CASE("max_pool2d 3x3/2/1 (ResNet stem): padding never wins, first maximum wins ties") {
  Tensor x = from_vector({-5, -4, -3, -2, -1, -6, -7, -8, -9}, {1, 1, 3, 3}, DType::f64);
  Tensor y = max_pool2d(x, {3, 3, 2, 2, 1, 1});
  CHECK(y.shape() == Shape{1, 1, 2, 2});
  CHECK(y.to_vector<double>() == std::vector<double>{-1, -1, -1, -1});
  Tensor ties = ones({1, 1, 2, 2}, {DType::f64}).set_requires_grad(true);
  Tensor yt = max_pool2d(ties, {2, 2, 2, 2, 0, 0});
  sum(yt).backward();
  CHECK(ties.grad().to_vector<double>() == std::vector<double>{1, 0, 0, 0});
}

TEST_CASE("adaptive_avg_pool2d bins, linear and relu by hand") {
  Tensor x = from_vector({1, 2, 3, 4, 5}, {1, 1, 1, 5}, DType::f64);
  // 5 → 3 bins: [0,2), [1,4), [3,5)
  CHECK(adaptive_avg_pool2d(x, 1, 3).to_vector<double>() == std::vector<double>{1.5, 3, 4.5});
  CHECK(adaptive_avg_pool2d(x, 1, 1).to_vector<double>() == std::vector<double>{3});
  Tensor a = from_vector({1, 2, 3, 4}, {2, 2}, DType::f64), w = from_vector({1, 0, 1, -1, 2, 2}, {3, 2}, DType::f64);
  CHECK(linear(a, w, from_vector({0, 1, 0}, {3}, DType::f64)).to_vector<double>() ==
        std::vector<double>{1, 0, 6, 3, 0, 14});
  CHECK(relu(from_vector({-1, 0, 2}, {3}, DType::f64)).to_vector<double>() == std::vector<double>{0, 0, 2});
}

// ------------------------------------------------------------------------------ gradient checks

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

// The channels-last CPU kernel (CPU inference runs channels-last on oneDNN) is held to the NCHW one: the
// same values and the same NCHW indices, bit for bit, with ties, NaNs (the first NaN wins), -inf windows
// and padding; its gradient (a channels-last backward of its own) too, windows overlapping.
TEST_CASE("max_pool2d channels-last == NCHW: values and indices exact, ties, NaN, -inf, padding; gradcheck") {
  Rng r(35);
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dt));
    std::vector<double> v(size_t(3 * 5 * 9 * 7));
    for (size_t i = 0; i < v.size(); ++i) v[i] = double(int64_t(r.randint(0, 6)) - 3);  // many ties
    v[7] = std::nan(""), v[8] = std::nan(""), v[100] = -INFINITY, v[101] = -INFINITY, v[107] = -INFINITY;
    for (size_t i = 200; i < 263; ++i) v[i] = -INFINITY;  // a whole plane region of -inf windows
    Tensor x = from_vector(v, {3, 5, 9, 7}, dt), xcl = x.contiguous(MemoryFormat::channels_last);
    for (Pool2dArgs a : {Pool2dArgs{3, 3, 2, 2, 1, 1}, Pool2dArgs{2, 2, 2, 2, 0, 0}, Pool2dArgs{3, 2, 1, 2, 1, 0}}) {
      CAPTURE(a.kernel_h);
      Shape ys = kernels::max_pool2d_out_shape(x.shape(), a);
      Tensor y = empty(ys, {dt}), yi = empty(ys, {DType::i64});
      Tensor ycl = empty(ys, {dt, Device::cpu(), MemoryFormat::channels_last}), ycli = empty(ys, {DType::i64});
      kernels::max_pool2d_forward(x, a, y, yi);
      kernels::max_pool2d_forward(xcl, a, ycl, ycli);
      REQUIRE_FALSE(ycl.is_contiguous());
      std::vector<double> want = y.to_vector<double>(), got = ycl.contiguous().to_vector<double>();
      REQUIRE(want.size() == got.size());
      for (size_t i = 0; i < want.size(); ++i) CHECK((want[i] == got[i] || (std::isnan(want[i]) && std::isnan(got[i]))));
      CHECK(yi.to_vector<int64_t>() == ycli.to_vector<int64_t>());
      // The gradient: each output's gy added at its argmax, overlapping windows summed in the same order.
      Tensor gy = randn(ys, r, {dt}), gx = empty(x.shape(), {dt}), gxcl = empty(x.shape(), {dt, Device::cpu(), MemoryFormat::channels_last});
      kernels::max_pool2d_backward(gy, yi, gx);
      kernels::max_pool2d_backward(gy.contiguous(MemoryFormat::channels_last), ycli, gxcl);
      REQUIRE_FALSE(gxcl.is_contiguous());
      CHECK(gxcl.to_vector<double>() == gx.to_vector<double>());
    }
  }
  std::vector<double> v(2 * 3 * 9 * 7);
  std::vector<int64_t> perm = r.permutation(int64_t(v.size()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.01 * double(perm[i]) - 1.0;
  Tensor xp = from_vector(v, {2, 3, 9, 7}, DType::f64).contiguous(MemoryFormat::channels_last);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return max_pool2d(in[0], Pool2dArgs{3, 3, 2, 2, 1, 1}); }, {xp},
                  {true}, 36);
}

// Channels-last adaptive_avg_pool2d (CPU training on oneDNN ends its backbone with one): each bin's
// terms in the NCHW kernel's order, so values and gradients are its own bit for bit; float64 gradcheck.
TEST_CASE("adaptive_avg_pool2d channels-last == NCHW: values and gradients bit for bit; gradcheck") {
  Rng r(37);
  for (DType dt : {DType::f32, DType::f64})
    for (auto [oh, ow] : {std::pair{1, 1}, {3, 2}, {7, 5}, {4, 4}}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(oh);
      Tensor x = randn({3, 19, 7, 5}, r, {dt}), xcl = x.contiguous(MemoryFormat::channels_last);
      Tensor y = empty({3, 19, oh, ow}, {dt}), ycl = empty({3, 19, oh, ow}, {dt});
      kernels::adaptive_avg_pool2d_forward(x, y);
      kernels::adaptive_avg_pool2d_forward(xcl, ycl);
      CHECK(ycl.to_vector<double>() == y.to_vector<double>());
      Tensor gy = randn(y.shape(), r, {dt}), gx = empty(x.shape(), {dt});
      Tensor gxcl = empty(x.shape(), {dt, Device::cpu(), MemoryFormat::channels_last});
      kernels::adaptive_avg_pool2d_backward(gy, gx);
      kernels::adaptive_avg_pool2d_backward(gy, gxcl);
      REQUIRE_FALSE(gxcl.is_contiguous());
      CHECK(gxcl.to_vector<double>() == gx.to_vector<double>());
    }
  Tensor xa = rn({2, 3, 7, 5}, r);
  CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(cast(in[0], DType::f64, MemoryFormat::channels_last), 3, 2); },
                  {xa}, {true}, 38);
}

#if defined(RTUNE_TEST_HAS_CUDA)
// ------------------------------------------------------------------------------------ CPU vs CUDA

using namespace rtune::cudatest;
namespace K = rtune::kernels;

CUDA_TEST_CASE("max_pool2d: values and torch indices exact; backward scatters the gradient") {
  Rng r(8);
  struct PoolCase { Shape x; K::Pool2dArgs a; };
  for (const PoolCase& c : {PoolCase{{2, 3, 9, 11}, {3, 3, 2, 2, 1, 1}}, PoolCase{{1, 2, 8, 6}, {2, 2, 2, 2, 0, 0}},
                            PoolCase{{2, 4, 7, 7}, {3, 3, 1, 1, 1, 1}}})
    for (MemoryFormat fmt : {kNCHW, kNHWC}) {
      CAPTURE(shape_str(c.x));
      CAPTURE(int(fmt));
      Tensor x = randn_f(c.x, r, fmt);
      Shape ys = K::max_pool2d_out_shape(c.x, c.a);
      Tensor y = empty(ys), idx = empty(ys, {DType::i64});
      Tensor dy = nan_out(ys, DType::f32, fmt), didx = empty(ys, {DType::i64, gpu()});
      didx.fill_(-7);
      K::max_pool2d_forward(x, c.a, y, idx);
      K::max_pool2d_forward(dev(x), c.a, dy, didx);
      check_dev(dy, y, 0, 0);
      CHECK(didx.cpu().to_vector<int64_t>() == idx.to_vector<int64_t>());
      Tensor gy = randn_f(ys, r, fmt);
      Tensor gx = empty(c.x), dgx = nan_out(c.x, DType::f32, fmt);
      K::max_pool2d_backward(gy, idx, gx);
      K::max_pool2d_backward(dev(gy), didx, dgx);
      check_dev(dgx, gx, 1e-6, 1e-6);  // overlapping windows add in another order
    }
  Tensor xn = from_vector({1, std::nan(""), 3, 4}, {1, 1, 2, 2});  // NaN propagates as in torch
  Tensor y = nan_out({1, 1, 1, 1}), idx = empty({1, 1, 1, 1}, {DType::i64, gpu()});
  K::max_pool2d_forward(dev(xn), {2, 2, 2, 2, 0, 0}, y, idx);
  CHECK(std::isnan(y.cpu().item<float>()));
  CHECK(idx.cpu().item<int64_t>() == 1);
}

CUDA_TEST_CASE("adaptive_avg_pool2d forward/backward: torch bins, NCHW and channels-last") {
  Rng r(9);
  for (Shape out : {Shape{1, 1}, Shape{3, 2}, Shape{7, 5}})
    for (MemoryFormat fmt : {kNCHW, kNHWC}) {
      CAPTURE(shape_str(out));
      Tensor x = randn_f({2, 3, 7, 5}, r, fmt);
      Shape ys{2, 3, out[0], out[1]};
      Tensor y = empty(ys), dy = nan_out(ys);
      K::adaptive_avg_pool2d_forward(x, y);
      K::adaptive_avg_pool2d_forward(dev(x), dy);
      check_dev(dy, y, 1e-6, 1e-6);
      Tensor gy = randn_f(ys, r), gx = empty(x.shape()), dgx = nan_out(x.shape(), DType::f32, fmt);
      K::adaptive_avg_pool2d_backward(gy, gx);
      K::adaptive_avg_pool2d_backward(dev(gy), dgx);
      check_dev(dgx, gx, 1e-6, 1e-6);
    }
}
#endif  // RTUNE_TEST_HAS_CUDA
