// batch_norm (kernels/cpu/batch_norm.cpp, kernels/cuda/batch_norm.cu): training statistics and the
// running-stat update by hand; float64 gradient checks in train and eval, affine and not; with a CUDA
// backend, cuDNN against the CPU oracle (statistics in double: fp32 1e-5 / 1e-6) and its error for
// one value per channel.
#include <cmath>

#include "engine/functional.h"
#include "kernels/ops.h"
#include "tests/ops/ops_test_util.h"

using namespace rtune;
using namespace rtune::opstest;

// ----------------------------------------------------------------------------------------- forward

TEST_CASE("batch_norm train: batch statistics, unbiased running variance, momentum") {
  // Channel 0 holds 1,2,3,4 (mean 2.5, biased var 1.25, unbiased 5/3); channel 1 holds 0,0,0,8.
  Tensor x = from_vector({1, 2, 0, 0, 3, 4, 0, 8}, {2, 2, 1, 2}, DType::f64);
  Tensor rm = zeros({2}, {DType::f64}), rv = ones({2}, {DType::f64});
  Tensor w = from_vector({2, 1}, {2}, DType::f64), b = from_vector({0.5, 0}, {2}, DType::f64);
  Tensor y = batch_norm(x, w, b, rm, rv, true, 0.1, 0.0);
  CHECK_CLOSE(rm, from_vector({0.25, 0.2}, {2}, DType::f64), 1e-15);
  CHECK_CLOSE(rv, from_vector({0.9 + 0.1 * 5.0 / 3.0, 0.9 + 0.1 * 16.0}, {2}, DType::f64), 1e-15);
  double s0 = 1 / std::sqrt(1.25);
  std::vector<double> y0 = y.to_vector<double>();
  CHECK(std::abs(y0[0] - (2 * (1 - 2.5) * s0 + 0.5)) < 1e-14);
  CHECK(std::abs(y0[5] - (2 * (4 - 2.5) * s0 + 0.5)) < 1e-14);
  CHECK(std::abs(y0[6] - (0 - 2) / std::sqrt(12.0)) < 1e-14);
  // Eval uses the running stats.
  Tensor ye = batch_norm(x, w, b, rm, rv, false, 0.1, 1e-5);
  CHECK(std::abs(ye.to_vector<double>()[0] - (2 * (1 - 0.25) / std::sqrt(rv.to_vector<double>()[0] + 1e-5) + 0.5)) <
        1e-14);
}

// ------------------------------------------------------------------------------ gradient checks

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

// sync_batch_norm with one rank (the sum over ranks is the identity) is batch_norm in training mode:
// outputs, running statistics and every gradient; and its own float64 gradient check.
TEST_CASE("sync_batch_norm on one rank == batch_norm(training); gradcheck") {
  Rng r(23);
  const RankSum one_rank = [](std::span<double>) {};
  Tensor x = rn({3, 4, 5, 3}, r), w = rn({4}, r), b = rn({4}, r);
  Tensor rm = rn({4}, r), rv = add(rand({4}, r, {DType::f64}), full({4}, 0.5, {DType::f64}));
  Tensor rm1 = rm.clone(), rv1 = rv.clone(), rm2 = rm.clone(), rv2 = rv.clone();
  std::vector<Tensor> a{x.clone().set_requires_grad(true), w.clone().set_requires_grad(true), b.clone().set_requires_grad(true)};
  std::vector<Tensor> c{x.clone().set_requires_grad(true), w.clone().set_requires_grad(true), b.clone().set_requires_grad(true)};
  Tensor ya = batch_norm(a[0], a[1], a[2], rm1, rv1, true, 0.1, 1e-5);
  Tensor yc = sync_batch_norm(c[0], c[1], c[2], rm2, rv2, 0.1, 1e-5, one_rank);
  CHECK_CLOSE(yc, ya, 1e-12, 1e-12);
  CHECK_CLOSE(rm2, rm1, 1e-13, 1e-14);
  CHECK_CLOSE(rv2, rv1, 1e-13, 1e-14);
  Tensor gy = rn({3, 4, 5, 3}, r);
  sum(mul(ya, gy)).backward();
  sum(mul(yc, gy)).backward();
  for (int i = 0; i < 3; ++i) {
    CAPTURE(i);
    CHECK_CLOSE(c[size_t(i)].grad(), a[size_t(i)].grad(), 1e-11, 1e-12);
  }
  CHECK_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        Tensor m = rm.clone(), v = rv.clone();
        return sync_batch_norm(in[0], in[1], in[2], m, v, 0.1, 1e-5, one_rank);
      },
      {x, w, b}, {true, true, true}, 24);
}

// Two ranks inside one process: rank 0 holds the first two samples, rank 1 the third; each rank's sum
// over ranks adds the other's contribution, recorded from a first pass. Together they must give
// batch_norm over all three samples: each half of the output, dx, and the sum of the ranks' dw and db.
TEST_CASE("sync_batch_norm over two simulated ranks == batch_norm over the whole batch") {
  Rng r(25);
  Tensor x = rn({3, 4, 5, 3}, r), w = rn({4}, r), b = rn({4}, r), gy = rn({3, 4, 5, 3}, r);
  Tensor rm = zeros({4}, {DType::f64}), rv = ones({4}, {DType::f64});
  std::vector<Tensor> whole{x.clone().set_requires_grad(true), w.clone().set_requires_grad(true), b.clone().set_requires_grad(true)};
  Tensor y = batch_norm(whole[0], whole[1], whole[2], rm, rv, true, 0.1, 1e-5);
  sum(mul(y, gy)).backward();
  // Each rank's buffers in call order (forward statistics, then backward sums), as each pass sent them.
  // Pass 0 sees no other rank; pass 1 gets the forward statistics right, hence its backward sums; pass 2
  // adds the other rank's correct contributions to both calls.
  std::vector<std::vector<std::vector<double>>> sent(2), prev(2);
  std::vector<Tensor> outs(2), dx(2), dw(2), db(2);
  for (int pass = 0; pass < 3; ++pass) {
    prev = sent;
    sent.assign(2, {});
    for (int rank = 0; rank < 2; ++rank) {
      size_t call = 0;
      const int other = 1 - rank;
      RankSum sum_ranks = [&](std::span<double> buf) {
        sent[size_t(rank)].emplace_back(buf.begin(), buf.end());
        if (pass > 0)
          for (size_t i = 0; i < buf.size(); ++i) buf[i] += prev[size_t(other)][call][i];
        ++call;
      };
      Tensor xr = rank == 0 ? x.narrow(0, 0, 2).contiguous() : x.narrow(0, 2, 1).contiguous();
      Tensor gr = rank == 0 ? gy.narrow(0, 0, 2).contiguous() : gy.narrow(0, 2, 1).contiguous();
      std::vector<Tensor> in{xr.set_requires_grad(true), w.clone().set_requires_grad(true), b.clone().set_requires_grad(true)};
      Tensor m = zeros({4}, {DType::f64}), v = ones({4}, {DType::f64});
      outs[size_t(rank)] = sync_batch_norm(in[0], in[1], in[2], m, v, 0.1, 1e-5, sum_ranks);
      sum(mul(outs[size_t(rank)], gr)).backward();
      dx[size_t(rank)] = in[0].grad(), dw[size_t(rank)] = in[1].grad(), db[size_t(rank)] = in[2].grad();
      if (pass == 2) {
        CHECK_CLOSE(m, rm, 1e-12, 1e-14);  // the running statistics of the whole batch on every rank
        CHECK_CLOSE(v, rv, 1e-12, 1e-14);
      }
    }
  }
  CHECK_CLOSE(outs[0], y.detach().narrow(0, 0, 2).contiguous(), 1e-12, 1e-12);
  CHECK_CLOSE(outs[1], y.detach().narrow(0, 2, 1).contiguous(), 1e-12, 1e-12);
  CHECK_CLOSE(dx[0], whole[0].grad().narrow(0, 0, 2).contiguous(), 1e-11, 1e-12);
  CHECK_CLOSE(dx[1], whole[0].grad().narrow(0, 2, 1).contiguous(), 1e-11, 1e-12);
  CHECK_CLOSE(add(dw[0], dw[1]), whole[1].grad(), 1e-11, 1e-12);
  CHECK_CLOSE(add(db[0], db[1]), whole[2].grad(), 1e-11, 1e-12);
}

#if defined(RTUNE_TEST_HAS_CUDA)
// ------------------------------------------------------------------------------------ CPU vs CUDA

using namespace rtune::cudatest;
namespace K = rtune::kernels;

CUDA_TEST_CASE("batch norm train/eval/backward: cuDNN == CPU, running statistics as the CPU path") {
  Rng r(7);
  for (Shape s : {Shape{2, 3, 5, 7}, Shape{4, 8, 3, 3}, Shape{5, 6}})
    for (MemoryFormat fmt : {kNCHW, kNHWC})
      for (bool affine : {true, false}) {
        if (fmt == kNHWC && s.size() != 4) continue;
        CAPTURE(shape_str(s));
        CAPTURE(int(fmt));
        CAPTURE(affine);
        int64_t C = s[1];
        Tensor x = empty(s, {DType::f32, Device::cpu(), fmt});
        K::add_scalar(randn_f(s, r, fmt), 0.5, x);  // non-zero mean
        Tensor w = affine ? randn_f({C}, r) : Tensor(), b = affine ? randn_f({C}, r) : Tensor();
        Tensor rm = randn_f({C}, r), rv = empty({C});
        K::add_scalar(K::sum_to(randn_f({2, C}, r), {C}), 3.0, rv);  // positive running variance
        Tensor drm = dev(rm), drv = dev(rv);
        Tensor y = empty(s, {DType::f32, Device::cpu(), fmt}), sm = empty({C}), si = empty({C});
        Tensor dy = nan_out(s, DType::f32, fmt), dsm = nan_out({C}), dsi = nan_out({C});
        K::batch_norm_forward_train(x, w, b, rm, rv, 0.1, 1e-5, y, sm, si);
        K::batch_norm_forward_train(dev(x), affine ? dev(w) : Tensor(), affine ? dev(b) : Tensor(), drm, drv, 0.1,
                                    1e-5, dy, dsm, dsi);
        check_dev(dy, y, 1e-5, 1e-5);
        check_dev(dsm, sm, 1e-5, 1e-6);
        check_dev(dsi, si, 1e-5, 1e-6);
        check_dev(drm, rm, 1e-5, 1e-6);
        check_dev(drv, rv, 1e-5, 1e-6);

        Tensor ye = empty(s, {DType::f32, Device::cpu(), fmt}), dye = nan_out(s, DType::f32, fmt);
        K::batch_norm_forward_eval(x, w, b, rm, rv, 1e-5, ye);
        K::batch_norm_forward_eval(dev(x), affine ? dev(w) : Tensor(), affine ? dev(b) : Tensor(), drm, drv, 1e-5, dye);
        check_dev(dye, ye, 1e-5, 1e-5);

        Tensor gy = randn_f(s, r, fmt);
        for (bool training : {true, false}) {
          CAPTURE(training);
          Tensor gx = empty(s, {DType::f32, Device::cpu(), fmt}), gw = empty({C}), gb = empty({C});
          Tensor dgx = nan_out(s, DType::f32, fmt), dgw = nan_out({C}), dgb = nan_out({C});
          K::batch_norm_backward(gy, x, w, sm, si, training, gx, gw, gb);
          K::batch_norm_backward(dev(gy), dev(x), affine ? dev(w) : Tensor(), dsm, dsi, training, dgx, dgw, dgb);
          check_dev(dgx, gx, 1e-4, 1e-5);
          check_dev(dgw, gw, 1e-4, 1e-5);
          check_dev(dgb, gb, 1e-5, 1e-5);
          Tensor none1, none2, dnone1, dnone2, dgx_only = nan_out(s, DType::f32, fmt);  // skip param grads
          K::batch_norm_backward(dev(gy), dev(x), affine ? dev(w) : Tensor(), dsm, dsi, training, dgx_only, dnone1,
                                 dnone2);
          check_dev(dgx_only, gx, 1e-4, 1e-5);
        }
      }
}

CUDA_TEST_CASE("batch norm: one value per channel in training is an error naming the input") {
  Tensor x = zeros({1, 3, 1, 1}, {DType::f32, gpu()});
  Tensor y = nan_out({1, 3, 1, 1}), sm = nan_out({3}), si = nan_out({3}), none;
  CHECK_THROWS_WITH(K::batch_norm_forward_train(x, Tensor(), Tensor(), none, none, 0.1, 1e-5, y, sm, si),
                    doctest::Contains("more than one value per channel"));
}
#endif  // RTUNE_TEST_HAS_CUDA
