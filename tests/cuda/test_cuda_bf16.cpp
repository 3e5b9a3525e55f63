// bfloat16 on the CUDA device (channels-last, the mixed-precision path: bf16 activations and
// weights, fp32 BN parameters and statistics, fp32 accumulation in cuDNN/cuBLAS and own kernels)
// against the CPU oracle in float32 run on the same bf16-rounded inputs. bf16 keeps 8 significant
// bits (2^-9 relative rounding), so each output is compared norm-wise: ‖got − ref‖/‖ref‖ ≤ 1e-2
// (outputs rounded once to bf16 are ~2e-3; cuDNN's fp32 accumulation adds nothing visible).
#include <cmath>

#include "engine/functional.h"
#include "kernels/ops.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/cuda/skip_without_device.h"

using namespace rtune;
using namespace rtune::cudatest;
namespace K = rtune::kernels;

namespace {
constexpr MemoryFormat kNHWC = MemoryFormat::channels_last;
constexpr double kTol = 1e-2;

double normwise(const Tensor& got, const Tensor& ref) {
  std::vector<double> x = got.to_vector<double>(), y = ref.to_vector<double>();
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    num += (x[i] - y[i]) * (x[i] - y[i]);
    den += y[i] * y[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}
// A bf16-representable f32 CPU tensor and its bf16 device twin.
std::pair<Tensor, Tensor> pair_of(const Shape& s, Rng& r, MemoryFormat fmt = MemoryFormat::contiguous) {
  Tensor b = randn_cpu(s, r, DType::f32, fmt).to(DType::bf16);
  return {b.to(DType::f32), dev(b)};
}
void check_bf16(const Tensor& got_dev, const Tensor& ref) {
  REQUIRE(got_dev.dtype() == DType::bf16);
  double e = normwise(got_dev.cpu().to(DType::f32), ref);
  CHECK_MESSAGE(e <= kTol, "norm-wise error " << e);
}
}  // namespace

TEST_CASE("bf16 channels-last conv2d forward / backward-data / backward-filter") {
  Rng r(21);
  Shape xs{2, 8, 9, 9}, ws{16, 8, 3, 3};
  K::Conv2dArgs a{2, 2, 1, 1, 1, 1};
  auto [x, dx] = pair_of(xs, r, kNHWC);
  auto [w, dw] = pair_of(ws, r, kNHWC);
  Shape ys = K::conv2d_out_shape(xs, ws, a);
  Tensor y = empty(ys), dy = nan_out(ys, DType::bf16, kNHWC);
  K::conv2d_forward(x, w, Tensor(), a, y);
  K::conv2d_forward(dx, dw, Tensor(), a, dy);
  check_bf16(dy, y);
  auto [gy, dgy] = pair_of(ys, r, kNHWC);
  Tensor gx = empty(xs), dgx = nan_out(xs, DType::bf16, kNHWC);
  K::conv2d_backward_input(gy, w, a, gx);
  K::conv2d_backward_input(dgy, dw, a, dgx);
  check_bf16(dgx, gx);
  Tensor gw = empty(ws), dgw = nan_out(ws, DType::bf16, kNHWC);
  K::conv2d_backward_weight(gy, x, a, gw);
  K::conv2d_backward_weight(dgy, dx, a, dgw);
  check_bf16(dgw, gw);
}

TEST_CASE("bf16 batch norm with fp32 parameters and statistics") {
  Rng r(22);
  Shape s{4, 8, 5, 5};
  auto [x, dx] = pair_of(s, r, kNHWC);
  Tensor w = randn_cpu({8}, r), b = randn_cpu({8}, r), rm = zeros({8}), rv = ones({8});
  Tensor drm = dev(rm), drv = dev(rv);
  Tensor y = empty(s), sm = empty({8}), si = empty({8});
  Tensor dy = nan_out(s, DType::bf16, kNHWC), dsm = nan_out({8}), dsi = nan_out({8});
  K::batch_norm_forward_train(x, w, b, rm, rv, 0.1, 1e-5, y, sm, si);
  K::batch_norm_forward_train(dx, dev(w), dev(b), drm, drv, 0.1, 1e-5, dy, dsm, dsi);
  check_bf16(dy, y);
  CHECK_CLOSE(dsm.cpu(), sm, 1e-5, 1e-6);  // fp32 statistics of the same bf16 values
  CHECK_CLOSE(dsi.cpu(), si, 1e-5, 1e-6);
  CHECK_CLOSE(drv.cpu(), rv, 1e-5, 1e-6);
  auto [gy, dgy] = pair_of(s, r, kNHWC);
  Tensor gx = empty(s), gw = empty({8}), gb = empty({8});
  Tensor dgx = nan_out(s, DType::bf16, kNHWC), dgw = nan_out({8}), dgb = nan_out({8});
  K::batch_norm_backward(gy, x, w, sm, si, true, gx, gw, gb);
  K::batch_norm_backward(dgy, dx, dev(w), dsm, dsi, true, dgx, dgw, dgb);
  check_bf16(dgx, gx);
  CHECK(normwise(dgw.cpu(), gw) <= 1e-4);  // fp32 parameter gradients
  CHECK(normwise(dgb.cpu(), gb) <= 1e-5);
}

TEST_CASE("bf16 elementwise, pooling, linear, softmax and cross-entropy") {
  Rng r(23);
  Shape s{2, 8, 7, 7};
  auto [a, da] = pair_of(s, r, kNHWC);
  auto [b, db] = pair_of(s, r, kNHWC);
  Tensor y = empty(s), dy = nan_out(s, DType::bf16, kNHWC);
  K::add(a, b, y);
  K::add(da, db, dy);
  check_bf16(dy, y);
  K::relu_forward(a, y);
  K::relu_forward(da, dy);
  check_bf16(dy, y);
  K::Pool2dArgs pa{3, 3, 2, 2, 1, 1};
  Shape ps = K::max_pool2d_out_shape(s, pa);
  Tensor py = empty(ps), pi = empty(ps, {DType::i64}), dpy = nan_out(ps, DType::bf16, kNHWC);
  Tensor dpi = empty(ps, {DType::i64, gpu()});
  K::max_pool2d_forward(a, pa, py, pi);
  K::max_pool2d_forward(da, pa, dpy, dpi);
  check_bf16(dpy, py);
  CHECK(dpi.cpu().to_vector<int64_t>() == pi.to_vector<int64_t>());  // same bf16 values, same argmax
  // Backward: overlapping 3x3/2 windows add into shared inputs (an fp32 scratch on the device).
  auto [pg, dpg] = pair_of(ps, r, kNHWC);
  Tensor pgx = empty(s), dpgx = nan_out(s, DType::bf16, kNHWC);
  K::max_pool2d_backward(pg, pi, pgx);
  K::max_pool2d_backward(dpg, dpi, dpgx);
  check_bf16(dpgx, pgx);
  Tensor ay = empty({2, 8, 1, 1}), day = nan_out({2, 8, 1, 1}, DType::bf16);
  K::adaptive_avg_pool2d_forward(a, ay);
  K::adaptive_avg_pool2d_forward(da, day);
  check_bf16(day, ay);

  auto [x, dx] = pair_of({4, 32}, r);
  auto [w, dw] = pair_of({10, 32}, r);
  auto [bias, dbias] = pair_of({10}, r);
  Tensor ly = empty({4, 10}), dly = nan_out({4, 10}, DType::bf16);
  K::linear_forward(x, w, bias, ly);
  K::linear_forward(dx, dw, dbias, dly);
  check_bf16(dly, ly);
  Tensor target = from_vector_i64({3, 0, 9, 4}, {4});
  Tensor loss = empty({}), lp = empty({4, 10}), dloss = nan_out({}, DType::bf16), dlp = nan_out({4, 10}, DType::bf16);
  K::cross_entropy_forward(ly, target, 0.1, K::Reduction::mean, loss, lp);
  K::cross_entropy_forward(dly, dev(target), 0.1, K::Reduction::mean, dloss, dlp);
  check_bf16(dloss, loss);
  check_bf16(dlp, lp);
}

TEST_CASE("bf16 add_relu: exact against the float32 CPU result rounded once (NCHW, channels-last, strided)") {
  Rng r(24);
  for (MemoryFormat fmt : {MemoryFormat::contiguous, kNHWC}) {
    CAPTURE(int(fmt));
    Shape s{2, 8, 7, 7};
    auto [a, da] = pair_of(s, r, fmt);
    auto [wide, dwide] = pair_of({2, 8, 7, 10}, r);
    Tensor b = wide.narrow(3, 1, 7), db = dwide.narrow(3, 1, 7);  // strided second operand
    Tensor ref = empty_like(a);
    K::add_relu_forward(a, b, ref);  // float32 sum and clamp of the bf16 values
    Tensor out = nan_out(s, DType::bf16, fmt);
    K::add_relu_forward(da, db, out);
    REQUIRE(out.is_contiguous(fmt));
    CHECK(out.cpu().to_vector<double>() == ref.to(DType::bf16).to_vector<double>());
  }
}
