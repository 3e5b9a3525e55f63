// batch_norm (kernels/cpu/batch_norm.cpp, kernels/cuda/batch_norm.cu): training statistics and the
// running-stat update by hand; float64 gradient checks in train and eval, affine and not; with a CUDA
// backend, cuDNN against the CPU oracle (statistics in double: fp32 1e-5 / 1e-6) and its error for
// one value per channel.
#include <algorithm>
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

// The fused BN+ReLU and BN+add+ReLU of trained blocks: the separate ops' values, running statistics and
// gradients (x, weight, bias, residual), bit for bit, with values at the kink and a NaN in the residual.
TEST_CASE("batch_norm_relu == relu(batch_norm) and add_relu(batch_norm, residual), values and gradients bit for bit") {
  Rng r(25);
  for (DType dt : {DType::f32, DType::f64})
    for (bool with_residual : {false, true})
      for (bool residual_grad : {false, true}) {
        if (!with_residual && residual_grad) continue;
        CAPTURE(dtype_name(dt));
        CAPTURE(with_residual);
        CAPTURE(residual_grad);
        Tensor x = randn({4, 5, 6, 7}, r, {dt}), w = randn({5}, r, {dt}), b = randn({5}, r, {dt});
        Tensor res = with_residual ? randn(x.shape(), r, {dt}) : Tensor();
        if (with_residual) res.narrow(0, 0, 1).narrow(1, 0, 1).fill_(std::nan(""));
        Tensor probe = randn(x.shape(), r, {dt});
        struct Out {
          Tensor y, gx, gw, gb, gr, rm, rv;
        };
        auto run = [&](bool fused) {
          Out o;
          Tensor xi = x.detach().clone().set_requires_grad(true), wi = w.detach().clone().set_requires_grad(true),
                 bi = b.detach().clone().set_requires_grad(true);
          Tensor ri = with_residual ? res.detach().clone() : Tensor();
          if (residual_grad) ri.set_requires_grad(true);
          o.rm = zeros({5}, {dt});
          o.rv = ones({5}, {dt});
          if (fused) {
            o.y = batch_norm_relu(xi, wi, bi, o.rm, o.rv, 0.1, 1e-5, ri);
          } else {
            Tensor bn = batch_norm(xi, wi, bi, o.rm, o.rv, true, 0.1, 1e-5);
            o.y = with_residual ? add_relu(bn, ri) : relu(bn);
          }
          sum(mul(o.y, probe)).backward();
          o.gx = xi.grad(), o.gw = wi.grad(), o.gb = bi.grad();
          if (residual_grad) o.gr = ri.grad();
          return o;
        };
        Out f = run(true), u = run(false);
        CHECK(f.y.to_vector<double>() == u.y.to_vector<double>());
        CHECK(f.rm.to_vector<double>() == u.rm.to_vector<double>());
        CHECK(f.rv.to_vector<double>() == u.rv.to_vector<double>());
        CHECK(f.gx.to_vector<double>() == u.gx.to_vector<double>());
        CHECK(f.gw.to_vector<double>() == u.gw.to_vector<double>());
        CHECK(f.gb.to_vector<double>() == u.gb.to_vector<double>());
        if (residual_grad) CHECK(f.gr.to_vector<double>() == u.gr.to_vector<double>());
        if (with_residual) CHECK(f.y.narrow(0, 0, 1).narrow(1, 0, 1).to_vector<double>() == std::vector<double>(42, 0.0));
      }
}

TEST_CASE("gradcheck batch_norm_relu, with and without a residual") {
  Rng r(26);
  for (bool with_residual : {false, true}) {
    CAPTURE(with_residual);
    // With this seed no output lies within the finite differences' step of ReLU's kink (across it they
    // would measure no derivative).
    Tensor x = rn({3, 4, 5, 3}, r), w = rn({4}, r), b = rn({4}, r), res = with_residual ? rn({3, 4, 5, 3}, r) : Tensor();
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          Tensor m = zeros({4}, {DType::f64}), v = ones({4}, {DType::f64});
          return batch_norm_relu(in[0], in[1], in[2], m, v, 0.1, 1e-5, with_residual ? in[3] : Tensor());
        },
        {x, w, b, with_residual ? res : rn({1}, r)}, {true, true, true, with_residual}, 27);
  }
}

// Channels-last inputs (CPU training and inference on oneDNN) run batch_norm_nhwc.cpp's kernels: the NCHW
// kernels' formulas over rows of channels, so they differ only in the order the double per-channel sums
// add up. Bound: M double terms in another order differ by at most ~M·2^-53 of their magnitude, 2.6e-13
// for the largest M here (2304); float64 results are held to 1e-12 relative. A float32 result computed in
// double and rounded once may then land one float32 rounding away: 2 ulp (2.4e-7) relative, and 1e-9
// absolute for values that cancel to near zero. Shapes: C not a multiple of the vector width, M below,
// at and past the 256-row blocks (with a partial last block).
TEST_CASE("batch norm on channels-last tensors == on NCHW (every CPU op, f32 and f64, masked and not)") {
  Rng r(29);
  const MemoryFormat cl = MemoryFormat::channels_last;
  for (DType dt : {DType::f32, DType::f64})
    for (Shape s : {Shape{2, 37, 3, 5}, Shape{4, 16, 8, 8}, Shape{4, 19, 24, 24}}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(shape_str(s));
      const double rtol = dt == DType::f64 ? 1e-12 : 2.4e-7, atol = dt == DType::f64 ? 1e-12 : 1e-9;
      const int64_t C = s[1];
      auto both = [&](const Tensor& t) { return std::pair{t.contiguous(), t.contiguous(cl)}; };
      auto [x, xc] = both(add(randn(s, r, {dt}), full(s, 0.5, {dt})));  // non-zero mean
      auto [gy, gyc] = both(randn(s, r, {dt}));
      auto [res, resc] = both(randn(s, r, {dt}));
      const Tensor w = randn({C}, r, {dt}), b = randn({C}, r, {dt});
      REQUIRE(!xc.is_contiguous());
      // Forward in training, every epilogue: values, saved and running statistics.
      for (int epilogue = 0; epilogue < 3; ++epilogue) {  // none, ReLU, residual add + ReLU
        CAPTURE(epilogue);
        Tensor rm = zeros({C}, {dt}), rv = ones({C}, {dt}), rmc = rm.clone(), rvc = rv.clone();
        Tensor y = empty(s, {dt}), yc = empty(s, {dt, Device::cpu(), cl});
        Tensor sm = empty({C}, {dt}), si = empty({C}, {dt}), smc = empty({C}, {dt}), sic = empty({C}, {dt});
        if (epilogue == 0) {
          kernels::batch_norm_forward_train(x, w, b, rm, rv, 0.1, 1e-5, y, sm, si);
          kernels::batch_norm_forward_train(xc, w, b, rmc, rvc, 0.1, 1e-5, yc, smc, sic);
        } else {
          kernels::batch_norm_relu_forward_train(x, w, b, rm, rv, 0.1, 1e-5, epilogue == 2 ? res : Tensor(), y, sm, si);
          kernels::batch_norm_relu_forward_train(xc, w, b, rmc, rvc, 0.1, 1e-5, epilogue == 2 ? resc : Tensor(), yc, smc, sic);
        }
        CHECK(yc.is_contiguous(cl));
        CHECK_CLOSE(yc, y, rtol, atol);
        CHECK_CLOSE(smc, sm, rtol, atol);
        CHECK_CLOSE(sic, si, rtol, atol);
        CHECK_CLOSE(rmc, rm, rtol, atol);
        CHECK_CLOSE(rvc, rv, rtol, atol);
        // Backward, training and eval statistics, with ReLU's mask read in the pass and without.
        for (bool training : {true, false})
          for (bool masked : {false, true}) {
            if (masked && !training) continue;  // the fused backward is the training one
            CAPTURE(training);
            CAPTURE(masked);
            Tensor gx = empty(s, {dt}), gxc = empty(s, {dt, Device::cpu(), cl});
            Tensor gw = empty({C}, {dt}), gb = empty({C}, {dt}), gwc = empty({C}, {dt}), gbc = empty({C}, {dt});
            if (masked) {
              kernels::batch_norm_relu_backward(gy, y, x, w, sm, si, gx, gw, gb);
              kernels::batch_norm_relu_backward(gyc, yc, xc, w, sm, si, gxc, gwc, gbc);
            } else {
              kernels::batch_norm_backward(gy, x, w, sm, si, training, gx, gw, gb);
              kernels::batch_norm_backward(gyc, xc, w, sm, si, training, gxc, gwc, gbc);
            }
            CHECK_CLOSE(gxc, gx, rtol, atol);
            CHECK_CLOSE(gwc, gw, rtol, atol);
            CHECK_CLOSE(gbc, gb, rtol, atol);
          }
      }
      // Eval forward: per-channel constants, so bit for bit.
      Tensor rm = randn({C}, r, {dt}), rv = add(rand({C}, r, {dt}), full({C}, 0.5, {dt}));
      Tensor ye = empty(s, {dt}), yec = empty(s, {dt, Device::cpu(), cl});
      kernels::batch_norm_forward_eval(x, w, b, rm, rv, 1e-5, ye);
      kernels::batch_norm_forward_eval(xc, w, b, rm, rv, 1e-5, yec);
      CHECK(yec.to_vector<double>() == ye.to_vector<double>());
      // The sync-BN ops: channel sums, normalise, backward sums, input gradient from all ranks' sums.
      Tensor sums = empty({2 * C}, {DType::f64}), sumsc = empty({2 * C}, {DType::f64});
      kernels::batch_norm_channel_sums(x, sums);
      kernels::batch_norm_channel_sums(xc, sumsc);
      CHECK_CLOSE(sumsc, sums, 1e-12, 1e-12);
      std::vector<double> st = sums.to_vector<double>();  // mean-like values, then positive invstd-like ones
      for (int64_t c = 0; c < C; ++c) st[size_t(c)] /= double(x.numel() / C), st[size_t(C + c)] = 0.5 + r.uniform();
      const Tensor stats = from_vector(st, {2 * C}, DType::f64);
      Tensor yn = empty(s, {dt}), ync = empty(s, {dt, Device::cpu(), cl});
      kernels::batch_norm_normalize(x, w, b, stats, yn);
      kernels::batch_norm_normalize(xc, w, b, stats, ync);
      CHECK(ync.to_vector<double>() == yn.to_vector<double>());
      const Tensor mean = stats.narrow(0, 0, C).to(dt).contiguous(), invstd = stats.narrow(0, C, C).to(dt).contiguous();
      Tensor gs = empty({2 * C}, {DType::f64}), gsc = empty({2 * C}, {DType::f64});
      kernels::batch_norm_backward_sums(gy, x, mean, invstd, gs);
      kernels::batch_norm_backward_sums(gyc, xc, mean, invstd, gsc);
      CHECK_CLOSE(gsc, gs, 1e-12, 1e-12);
      Tensor gi = empty(s, {dt}), gic = empty(s, {dt, Device::cpu(), cl});
      kernels::batch_norm_backward_input_from_sums(gy, x, w, mean, invstd, gs, 2.0 * double(x.numel() / C), gi);
      kernels::batch_norm_backward_input_from_sums(gyc, xc, w, mean, invstd, gs, 2.0 * double(x.numel() / C), gic);
      CHECK(gic.to_vector<double>() == gi.to_vector<double>());
    }
}

TEST_CASE("gradcheck batch_norm and batch_norm_relu on channels-last inputs") {
  Rng r(30);
  const MemoryFormat cl = MemoryFormat::channels_last;
  Tensor x = rn({3, 4, 5, 3}, r), w = rn({4}, r), b = rn({4}, r), res = rn({3, 4, 5, 3}, r);
  for (bool training : {true, false}) {
    CAPTURE(training);
    Tensor rm = rn({4}, r), rv = add(rand({4}, r, {DType::f64}), full({4}, 0.5, {DType::f64}));
    CHECK_GRADCHECK(
        [&](const std::vector<Tensor>& in) {
          Tensor m = rm.clone(), v = rv.clone();
          return batch_norm(cast(in[0], DType::f64, cl), in[1], in[2], m, v, training, 0.1, 1e-5);
        },
        {x, w, b}, {true, true, true}, 31);
  }
  // With this seed no output lies within the finite differences' step of ReLU's kink.
  CHECK_GRADCHECK(
      [&](const std::vector<Tensor>& in) {
        Tensor m = zeros({4}, {DType::f64}), v = ones({4}, {DType::f64});
        return batch_norm_relu(cast(in[0], DType::f64, cl), in[1], in[2], m, v, 0.1, 1e-5, cast(in[3], DType::f64, cl));
      },
      {x, w, b, res}, {true, true, true, true}, 32);
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
// over ranks adds the other's contribution, recorded from a first pass. Each rank's outputs, dx, dw, db
// and running statistics (from zeros / ones), on x's device, in x's dtype and memory format.
struct TwoRanks {
  std::vector<Tensor> y, dx, dw, db, running_mean, running_var;
};
TwoRanks sync_bn_two_ranks(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& gy, MemoryFormat fmt) {
  const TensorOptions per_channel{x.dtype(), x.device()};
  // Each rank's buffers in call order (forward statistics, then backward sums), as each pass sent them.
  // Pass 0 sees no other rank; pass 1 gets the forward statistics right, hence its backward sums; pass 2
  // adds the other rank's correct contributions to both calls.
  std::vector<std::vector<std::vector<double>>> sent(2), prev(2);
  TwoRanks out;
  for (auto* v : {&out.y, &out.dx, &out.dw, &out.db, &out.running_mean, &out.running_var}) v->resize(2);
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
      Tensor xr = rank == 0 ? x.narrow(0, 0, 2).contiguous(fmt) : x.narrow(0, 2, 1).contiguous(fmt);
      Tensor gr = rank == 0 ? gy.narrow(0, 0, 2).contiguous(fmt) : gy.narrow(0, 2, 1).contiguous(fmt);
      std::vector<Tensor> in{xr.set_requires_grad(true), w.clone().set_requires_grad(true), b.clone().set_requires_grad(true)};
      const size_t k = size_t(rank);
      out.running_mean[k] = zeros({x.size(1)}, per_channel), out.running_var[k] = ones({x.size(1)}, per_channel);
      out.y[k] = sync_batch_norm(in[0], in[1], in[2], out.running_mean[k], out.running_var[k], 0.1, 1e-5, sum_ranks);
      sum(mul(out.y[k], gr)).backward();
      out.dx[k] = in[0].grad(), out.dw[k] = in[1].grad(), out.db[k] = in[2].grad();
    }
  }
  return out;
}

// Together the two ranks must give batch_norm over all three samples: each half of the output, dx, the
// sum of the ranks' dw and db, and the whole batch's running statistics on every rank.
TEST_CASE("sync_batch_norm over two simulated ranks == batch_norm over the whole batch") {
  Rng r(25);
  Tensor x = rn({3, 4, 5, 3}, r), w = rn({4}, r), b = rn({4}, r), gy = rn({3, 4, 5, 3}, r);
  Tensor rm = zeros({4}, {DType::f64}), rv = ones({4}, {DType::f64});
  std::vector<Tensor> whole{x.clone().set_requires_grad(true), w.clone().set_requires_grad(true), b.clone().set_requires_grad(true)};
  Tensor y = batch_norm(whole[0], whole[1], whole[2], rm, rv, true, 0.1, 1e-5);
  sum(mul(y, gy)).backward();
  TwoRanks ranks = sync_bn_two_ranks(x, w, b, gy, MemoryFormat::contiguous);
  for (int k = 0; k < 2; ++k) {
    CHECK_CLOSE(ranks.running_mean[size_t(k)], rm, 1e-12, 1e-14);
    CHECK_CLOSE(ranks.running_var[size_t(k)], rv, 1e-12, 1e-14);
  }
  CHECK_CLOSE(ranks.y[0], y.detach().narrow(0, 0, 2).contiguous(), 1e-12, 1e-12);
  CHECK_CLOSE(ranks.y[1], y.detach().narrow(0, 2, 1).contiguous(), 1e-12, 1e-12);
  CHECK_CLOSE(ranks.dx[0], whole[0].grad().narrow(0, 0, 2).contiguous(), 1e-11, 1e-12);
  CHECK_CLOSE(ranks.dx[1], whole[0].grad().narrow(0, 2, 1).contiguous(), 1e-11, 1e-12);
  CHECK_CLOSE(add(ranks.dw[0], ranks.dw[1]), whole[1].grad(), 1e-11, 1e-12);
  CHECK_CLOSE(add(ranks.db[0], ranks.db[1]), whole[2].grad(), 1e-11, 1e-12);
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
// ------------------------------------------------------------------ sync batch norm: CPU vs CUDA
// Both backends accumulate in double and compute every output in double, rounded once. They differ
// only in the summation order (a block tree against a sequential loop) and nvcc's fused multiply-adds.
// A sum of M terms is then off by at most about M·2^-53·Σ|term| (≈ 1e-13 for these M ≤ 2304 and O(1)
// values): rtol 1e-12, atol 1e-11. float64 outputs: a few double ulps of their O(1) terms, 1e-13.
// float32 outputs: the same double up to ~1e-16 relative, rounded to float: equal or 1 ulp apart at a
// rounding boundary; checked at 2 ulps (2.4e-7), atol 1e-9 for values near zero.
namespace {
struct SyncBnTol {
  double rtol, atol;
};
constexpr SyncBnTol kSumsTol{1e-12, 1e-11};
SyncBnTol output_tol(DType dt) { return dt == DType::f64 ? SyncBnTol{1e-13, 1e-13} : SyncBnTol{2.4e-7, 1e-9}; }
// stats (f64, 2C: mean, then invstd) of a whole batch from its channel sums, as sync_batch_norm forms them.
Tensor stats_from_sums(const Tensor& sums, double count, double eps) {
  std::vector<double> s = sums.to_vector<double>();
  const size_t C = s.size() / 2;
  std::vector<double> st(2 * C);
  for (size_t c = 0; c < C; ++c) {
    st[c] = s[c] / count;
    st[C + c] = 1.0 / std::sqrt(std::max(0.0, s[C + c] / count - st[c] * st[c]) + eps);
  }
  return from_vector(st, {int64_t(2 * C)}, DType::f64);
}
}  // namespace

CUDA_TEST_CASE("sync batch norm ops: CUDA == CPU, f32/f64, NCHW and channels-last, C past the grid") {
  Rng r(31);
  // {2,130,2,3}: more channels than the simulator's 128 blocks (the channel loop); {4,16,24,24}: more
  // elements than 128 blocks of 256 threads (grid-stride) and more values per channel than threads.
  for (DType dt : {DType::f32, DType::f64})
    for (Shape s : {Shape{2, 3, 5, 7}, Shape{3, 37, 4, 5}, Shape{2, 130, 2, 3}, Shape{4, 16, 24, 24}, Shape{5, 6}})
      for (MemoryFormat fmt : {kNCHW, kNHWC}) {
        if (fmt == kNHWC && s.size() != 4) continue;
        CAPTURE(dtype_name(dt));
        CAPTURE(shape_str(s));
        CAPTURE(int(fmt));
        const int64_t C = s[1];
        const double M = double(shape_numel(s) / C);
        const SyncBnTol out = output_tol(dt);
        Tensor x = empty(s, {dt, Device::cpu(), fmt});
        K::add_scalar(randn_cpu(s, r, dt, fmt), 0.5, x);  // non-zero mean
        Tensor gy = randn_cpu(s, r, dt, fmt), w = randn_cpu({C}, r, dt), b = randn_cpu({C}, r, dt);

        Tensor sums = empty({2 * C}, {DType::f64}), dsums = nan_out({2 * C}, DType::f64);
        K::batch_norm_channel_sums(x, sums);
        K::batch_norm_channel_sums(dev(x), dsums);
        check_dev(dsums, sums, kSumsTol.rtol, kSumsTol.atol);

        const Tensor stats = stats_from_sums(sums, M, 1e-5);  // both backends normalise with the same stats
        for (bool affine : {true, false}) {
          CAPTURE(affine);
          Tensor y = empty(s, {dt, Device::cpu(), fmt}), dy = nan_out(s, dt, fmt);
          K::batch_norm_normalize(x, affine ? w : Tensor(), affine ? b : Tensor(), stats, y);
          K::batch_norm_normalize(dev(x), affine ? dev(w) : Tensor(), affine ? dev(b) : Tensor(), dev(stats), dy);
          check_dev(dy, y, out.rtol, out.atol);
        }

        const Tensor mean = stats.narrow(0, 0, C).to(dt).contiguous(), invstd = stats.narrow(0, C, C).to(dt).contiguous();
        Tensor gsums = empty({2 * C}, {DType::f64}), dgsums = nan_out({2 * C}, DType::f64);
        K::batch_norm_backward_sums(gy, x, mean, invstd, gsums);
        K::batch_norm_backward_sums(dev(gy), dev(x), dev(mean), dev(invstd), dgsums);
        check_dev(dgsums, gsums, kSumsTol.rtol, kSumsTol.atol);

        // As if a second rank had contributed the same sums: grad_sums doubled over twice the count.
        Tensor all = empty({2 * C}, {DType::f64});
        K::scale(gsums, 2.0, all);
        for (bool affine : {true, false}) {
          CAPTURE(affine);
          Tensor gx = empty(s, {dt, Device::cpu(), fmt}), dgx = nan_out(s, dt, fmt);
          K::batch_norm_backward_input_from_sums(gy, x, affine ? w : Tensor(), mean, invstd, all, 2 * M, gx);
          K::batch_norm_backward_input_from_sums(dev(gy), dev(x), affine ? dev(w) : Tensor(), dev(mean), dev(invstd),
                                                 dev(all), 2 * M, dgx);
          check_dev(dgx, gx, out.rtol, out.atol);
        }
      }
}

// The per-block reductions sum in a fixed tree: the same input gives bit-identical sums run to run.
CUDA_TEST_CASE("sync batch norm sums on CUDA are deterministic") {
  Rng r(33);
  Tensor x = dev(randn_f({4, 16, 24, 24}, r)), gy = dev(randn_f({4, 16, 24, 24}, r));
  Tensor mean = dev(randn_f({16}, r)), invstd = dev(randn_f({16}, r));
  Tensor a = nan_out({32}, DType::f64), b = nan_out({32}, DType::f64);
  K::batch_norm_channel_sums(x, a);
  K::batch_norm_channel_sums(x, b);
  CHECK(a.to_vector<double>() == b.to_vector<double>());
  K::batch_norm_backward_sums(gy, x, mean, invstd, a);
  K::batch_norm_backward_sums(gy, x, mean, invstd, b);
  CHECK(a.to_vector<double>() == b.to_vector<double>());
}

CUDA_TEST_CASE("sync batch norm ops: bf16 is refused as on the CPU; mismatched dtypes name the op") {
  Tensor x = zeros({2, 3, 2, 2}, {DType::bf16, gpu()}), sums = nan_out({6}, DType::f64);
  CHECK_THROWS_WITH(K::batch_norm_channel_sums(x, sums), doctest::Contains("float32 or float64"));
  Tensor xf = zeros({2, 3, 2, 2}, {DType::f32, gpu()}), y = nan_out({2, 3, 2, 2});
  Tensor w64 = zeros({3}, {DType::f64, gpu()}), stats = nan_out({6}, DType::f64);
  CHECK_THROWS_WITH(K::batch_norm_normalize(xf, w64, Tensor(), stats, y), doctest::Contains("batch_norm_normalize"));
}

// sync_batch_norm on CUDA ranks (two simulated in one process, as the CPU case above) == whole-batch
// batch_norm on CUDA (cuDNN): forward, running statistics, dx, dw + db summed over the ranks. float64,
// NCHW and channels-last; both sides are exact to rounding, as in the CPU case.
CUDA_TEST_CASE("sync_batch_norm over two simulated CUDA ranks == batch_norm over the whole batch on CUDA") {
  Rng r(35);
  for (MemoryFormat fmt : {kNCHW, kNHWC}) {
    CAPTURE(int(fmt));
    const Shape s{3, 5, 4, 3};
    Tensor x = dev(randn_cpu(s, r, DType::f64, fmt)), gy = dev(randn_cpu(s, r, DType::f64, fmt));
    Tensor w = dev(randn_cpu({5}, r, DType::f64)), b = dev(randn_cpu({5}, r, DType::f64));
    Tensor rm = zeros({5}, {DType::f64, gpu()}), rv = ones({5}, {DType::f64, gpu()});
    std::vector<Tensor> whole{x.clone().set_requires_grad(true), w.clone().set_requires_grad(true),
                              b.clone().set_requires_grad(true)};
    Tensor y = batch_norm(whole[0], whole[1], whole[2], rm, rv, true, 0.1, 1e-5);
    sum(mul(y, gy)).backward();
    TwoRanks ranks = sync_bn_two_ranks(x, w, b, gy, fmt);
    for (int k = 0; k < 2; ++k) {
      REQUIRE(ranks.y[size_t(k)].is_cuda());
      REQUIRE(ranks.dx[size_t(k)].is_cuda());
      CHECK_CLOSE(ranks.running_mean[size_t(k)].cpu(), rm.cpu(), 1e-12, 1e-14);
      CHECK_CLOSE(ranks.running_var[size_t(k)].cpu(), rv.cpu(), 1e-12, 1e-14);
    }
    Tensor yc = y.detach().cpu(), gxc = whole[0].grad().cpu();
    CHECK_CLOSE(ranks.y[0].cpu(), yc.narrow(0, 0, 2).contiguous(), 1e-12, 1e-12);
    CHECK_CLOSE(ranks.y[1].cpu(), yc.narrow(0, 2, 1).contiguous(), 1e-12, 1e-12);
    CHECK_CLOSE(ranks.dx[0].cpu(), gxc.narrow(0, 0, 2).contiguous(), 1e-11, 1e-12);
    CHECK_CLOSE(ranks.dx[1].cpu(), gxc.narrow(0, 2, 1).contiguous(), 1e-11, 1e-12);
    CHECK_CLOSE(add(ranks.dw[0], ranks.dw[1]).cpu(), whole[1].grad().cpu(), 1e-11, 1e-12);
    CHECK_CLOSE(add(ranks.db[0], ranks.db[1]).cpu(), whole[2].grad().cpu(), 1e-11, 1e-12);
  }
}
#endif  // RTUNE_TEST_HAS_CUDA
