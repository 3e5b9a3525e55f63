// CUDA backend vs the CPU oracle, op by op (a ggml-style case table: odd sizes, stride 2, 1×1
// downsample, dilation, NCHW and channels-last, non-contiguous inputs). Every device output starts as
// NaN, so an element the backend never writes fails. Runs on the simulated device in the sim build
// and unchanged on a GPU. Tolerances (|got − ref| ≤ atol + rtol·|ref|):
//   exact (0): copies/conversions, fill, add/sub/mul/scale/relu/add_relu, max-pool values and indices,
//              clamp, normalize_images (uint8 -> every float dtype);
//   fp32 1e-5 / 1e-6: reductions in double (sum, softmax family, cross-entropy, BN, pools, linear bias);
//   fp32 1e-4 / 1e-5: cuDNN convolutions and cuBLAS GEMMs against Eigen's float GEMMs (FMA math, no TF32).
#include <cmath>

#include "engine/functional.h"
#include "kernels/cuda/allocator.h"
#include "kernels/ops.h"
#include "tests/cuda/cuda_test_util.h"

using namespace rtune;
using namespace rtune::cudatest;
namespace K = rtune::kernels;

namespace {
constexpr MemoryFormat kNCHW = MemoryFormat::contiguous, kNHWC = MemoryFormat::channels_last;

void check_dev(const Tensor& got_dev, const Tensor& ref, double rtol, double atol) {
  REQUIRE(got_dev.is_cuda());
  CHECK_CLOSE(got_dev.cpu(), ref, rtol, atol);
}
Tensor randn_f(const Shape& s, Rng& r, MemoryFormat fmt = kNCHW) { return randn_cpu(s, r, DType::f32, fmt); }
// A non-contiguous view with the given shape: the first `shape` elements of a wider tensor along W.
Tensor strided(const Shape& s, Rng& r) {
  Shape wide = s;
  wide.back() += 3;
  return randn_f(wide, r).narrow(int64_t(s.size()) - 1, 1, s.back());
}
}  // namespace

// ------------------------------------------------------------------------------------------ copies

TEST_CASE("copy: every dtype pair through strided views equals the CPU conversion") {
  Rng r(1);
  const DType all[] = {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i64, DType::u8};
  Tensor base = (randn(Shape{3, 5, 7}, r, {DType::f64}) * 20.0);
  Tensor nonneg = from_vector([&] {
    std::vector<double> v = base.to_vector<double>();
    for (double& e : v) e = std::floor(std::abs(e));
    return v;
  }(), base.shape(), DType::f64);
  for (DType s : all)
    for (DType d : all) {
      CAPTURE(dtype_name(s));
      CAPTURE(dtype_name(d));
      Tensor src = (d == DType::u8 || s == DType::u8 ? nonneg : base).to(s);  // u8 only from values it holds
      for (bool transposed : {false, true}) {
        CAPTURE(transposed);
        Tensor src_cpu = transposed ? src.transpose(0, 2) : src;  // 7×5×3 strided, or dense
        Tensor ref = empty(src_cpu.shape(), {d});
        K::copy(src_cpu, ref);
        Tensor out = nan_out(src_cpu.shape(), d);
        K::copy(transposed ? dev(src).transpose(0, 2) : dev(src), out);
        CHECK(out.cpu().to_vector<double>() == ref.to_vector<double>());
      }
    }
}

TEST_CASE("copy: NCHW <-> channels-last and into a strided destination") {
  Rng r(2);
  Tensor x = randn_f({2, 3, 5, 7}, r);
  Tensor cl = nan_out(x.shape(), DType::f32, kNHWC);
  K::copy(dev(x), cl);
  CHECK(cl.is_contiguous(kNHWC));
  check_dev(cl, x, 0, 0);
  Tensor back = nan_out(x.shape());
  K::copy(cl, back);
  check_dev(back, x, 0, 0);
  Tensor wide = zeros({2, 3, 5, 9}, {DType::f32, gpu()});
  Tensor view = wide.narrow(3, 1, 7);
  K::copy(cl, view);
  Tensor ref = zeros({2, 3, 5, 9});
  Tensor ref_view = ref.narrow(3, 1, 7);
  K::copy(x, ref_view);
  check_dev(wide, ref, 0, 0);
}

TEST_CASE("fill: every dtype, strided view, neighbours untouched") {
  for (DType d : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i64, DType::u8}) {
    CAPTURE(dtype_name(d));
    Tensor t = zeros({4, 9}, {d, gpu()});
    Tensor v = t.slice(1, 1, 8, 2);  // columns 1,3,5,7
    v.fill_(3.0);
    Tensor ref = zeros({4, 9}, {d});
    ref.slice(1, 1, 8, 2).fill_(3.0);
    CHECK(t.cpu().to_vector<double>() == ref.to_vector<double>());
  }
}

// ------------------------------------------------------------------------------------ elementwise

TEST_CASE("add/sub/mul/add_/scale/add_scalar/relu: exact, NCHW, channels-last and strided inputs") {
  Rng r(3);
  for (MemoryFormat fmt : {kNCHW, kNHWC}) {
    CAPTURE(int(fmt));
    Shape s{3, 5, 7, 9};  // 945 elements: several blocks and a grid-stride tail
    Tensor a = randn_f(s, r, fmt), b = strided(s, r), gy = randn_f(s, r, fmt);
    Tensor da = dev(a), db = dev(b), dgy = dev(gy);
    auto run2 = [&](void (*op)(const Tensor&, const Tensor&, Tensor&), const char* name) {
      CAPTURE(name);
      Tensor ref = empty_like(a), out = nan_out_like(da);
      op(a, b, ref);
      op(da, db, out);
      check_dev(out, ref, 0, 0);
    };
    run2(K::add, "add");
    run2(K::sub, "sub");
    run2(K::mul, "mul");
    Tensor y = empty_like(a), dy = nan_out_like(da);
    K::relu_forward(a, y);
    K::relu_forward(da, dy);
    check_dev(dy, y, 0, 0);
    Tensor gx = empty_like(a), dgx = nan_out_like(da);
    K::relu_backward(gy, y, gx);
    K::relu_backward(dgy, dy, dgx);
    check_dev(dgx, gx, 0, 0);
    Tensor sc = empty_like(a), dsc = nan_out_like(da);
    K::scale(b, -0.37, sc);
    K::scale(db, -0.37, dsc);
    check_dev(dsc, sc, 0, 0);
    K::add_scalar(b, 1.25, sc);
    K::add_scalar(db, 1.25, dsc);
    check_dev(dsc, sc, 0, 0);
    Tensor acc = a.clone(fmt), dacc = dev(a.clone(fmt));
    K::add_(acc, b);
    K::add_(dacc, db);
    check_dev(dacc, acc, 0, 0);
  }
}

TEST_CASE("add_relu: exact, f32/f64, NCHW, channels-last and strided inputs, NaN -> 0 as relu") {
  Rng r(31);
  for (DType dt : {DType::f32, DType::f64})
    for (MemoryFormat fmt : {kNCHW, kNHWC}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(int(fmt));
      Shape s{3, 5, 7, 9};  // 945 elements: several blocks and a grid-stride tail
      Tensor a = randn_f(s, r, fmt).to(dt);
      Tensor wide = randn_f({3, 5, 7, 12}, r).to(dt);
      Tensor b = wide.narrow(3, 2, 9);                       // strided along W on the CPU ...
      Tensor db = dev(wide).narrow(3, 2, 9);                 // ... and the same view on the device
      a.narrow(0, 0, 1).copy_(b.narrow(0, 0, 1) * -1.0);     // exact zeros at the kink
      a.narrow(0, 1, 1).narrow(1, 2, 1).fill_(std::nan(""));  // NaN + x -> 0
      Tensor ref = empty_like(a), unfused = empty_like(a);
      K::add_relu_forward(a, b, ref);
      K::add(a, b, unfused);
      K::relu_forward(unfused, unfused);
      CHECK(ref.to_vector<double>() == unfused.to_vector<double>());
      Tensor da = dev(a), out = nan_out(s, dt, fmt);
      K::add_relu_forward(da, db, out);
      REQUIRE(out.is_contiguous(fmt));
      check_dev(out, ref, 0, 0);
      Tensor out2 = nan_out(s, dt, fmt), ref2 = empty_like(a);  // both operands dense
      K::add_relu_forward(a, b.contiguous(), ref2);
      K::add_relu_forward(da, dev(b.contiguous()), out2);
      check_dev(out2, ref2, 0, 0);
    }
}

TEST_CASE("add_relu autograd on the device == CPU (values and both gradients)") {
  Rng r(32);
  Shape s{2, 4, 5, 5};
  Tensor a = randn_f(s, r, kNHWC), b = randn_f(s, r, kNHWC), probe = randn_f(s, r, kNHWC);
  auto run = [&](Device d) {
    Tensor ai = a.to(d).detach().set_requires_grad(true), bi = b.to(d).detach().set_requires_grad(true);
    Tensor y = add_relu(ai, bi);
    sum(mul(y, probe.to(d))).backward();
    return std::tuple{y.cpu(), ai.grad().cpu(), bi.grad().cpu()};
  };
  auto [y, ga, gb] = run(Device::cpu());
  auto [dy, dga, dgb] = run(gpu());
  CHECK_CLOSE(dy, y, 0, 0);
  CHECK_CLOSE(dga, ga, 0, 0);
  CHECK_CLOSE(dgb, gb, 0, 0);
}

// ------------------------------------------------------------------------------------ input images

namespace {
constexpr std::array<float, 3> kMean{0.485f, 0.456f, 0.406f}, kStd{0.229f, 0.224f, 0.225f};
// Channels-last u8 [n, 3, h, w] (interleaved HWC bytes) with every byte value, on the CPU.
Tensor image_bytes(int64_t n, int64_t h, int64_t w) {
  std::vector<uint8_t> bytes(size_t(n * h * w * 3));
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t((i * 37 + 11 + i / 256) % 256);
  return from_bytes(bytes.data(), bytes.size(), {n, h, w, 3}, DType::u8).permute({0, 3, 1, 2});
}
}  // namespace

TEST_CASE("normalize_images: exact vs the CPU, every output dtype, NCHW and channels-last outputs") {
  Tensor images = image_bytes(3, 13, 11);  // 1287 elements: several blocks and a grid-stride tail
  REQUIRE(images.is_contiguous(kNHWC));
  Tensor dimages = dev(images);
  REQUIRE(dimages.is_contiguous(kNHWC));
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16})
    for (MemoryFormat fmt : {kNCHW, kNHWC}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(int(fmt));
      Tensor ref = empty(images.shape(), {dt, Device::cpu(), fmt});
      K::normalize_images(images, kMean, kStd, ref);
      Tensor out = nan_out(images.shape(), dt, fmt);
      K::normalize_images(dimages, kMean, kStd, out);
      REQUIRE(out.is_contiguous(fmt));
      CHECK(out.cpu().to_vector<double>() == ref.to_vector<double>());
    }
}

TEST_CASE("normalize_images: 1x1 images, an offset view, and mismatched devices") {
  Tensor small = image_bytes(5, 1, 1);
  Tensor ref = empty({5, 3, 1, 1}), out = nan_out({5, 3, 1, 1});
  K::normalize_images(small, kMean, kStd, ref);
  K::normalize_images(dev(small), kMean, kStd, out);
  check_dev(out, ref, 0, 0);
  Tensor tail = dev(image_bytes(3, 4, 6)).narrow(0, 1, 2);  // storage offset on the device
  Tensor tail_ref = empty({2, 3, 4, 6}, {DType::f32, Device::cpu(), kNHWC});
  Tensor tail_out = nan_out({2, 3, 4, 6}, DType::f32, kNHWC);
  K::normalize_images(image_bytes(3, 4, 6).narrow(0, 1, 2), kMean, kStd, tail_ref);
  K::normalize_images(tail, kMean, kStd, tail_out);
  check_dev(tail_out, tail_ref, 0, 0);
  Tensor host_out = empty({5, 3, 1, 1});
  CHECK_THROWS_WITH_AS(K::normalize_images(dev(small), kMean, kStd, host_out), doctest::Contains("device"), Error);
  Tensor dev_out = nan_out({5, 3, 1, 1});
  CHECK_THROWS_WITH_AS(K::normalize_images(small, kMean, kStd, dev_out), doctest::Contains("device"), Error);
}

TEST_CASE("sum_all and sum_to: double accumulation") {
  Rng r(4);
  for (Shape s : {Shape{1}, Shape{1000}, Shape{3, 5, 7, 9}}) {
    Tensor x = randn_f(s, r);
    Tensor ref = empty({}), out = nan_out({});
    K::sum_all(x, ref);
    K::sum_all(dev(x), out);
    check_dev(out, ref, 1e-6, 1e-6);
  }
  Tensor xs = strided({4, 6}, r), ref = empty({}), out = nan_out({});
  K::sum_all(xs, ref);
  K::sum_all(dev(xs.contiguous()).transpose(0, 1).transpose(0, 1), out);
  check_dev(out, ref, 1e-6, 1e-6);
  Tensor x = randn_f({2, 3, 4, 5}, r);
  for (Shape target : {Shape{3, 1, 5}, Shape{1, 4, 1}, Shape{5}, Shape{2, 1, 4, 1}, Shape{2, 3, 4, 5}}) {
    CAPTURE(shape_str(target));
    check_dev(K::sum_to(dev(x), target), K::sum_to(x, target), 1e-6, 1e-6);
  }
}

// ------------------------------------------------------------------------------------------ conv2d

namespace {
struct ConvCase {
  Shape x, w;
  K::Conv2dArgs a;
  const char* name;
};
const ConvCase kConvCases[] = {
    {{2, 3, 7, 9}, {4, 3, 3, 3}, {1, 1, 1, 1, 1, 1}, "3x3 s1 p1 odd sizes"},
    {{2, 5, 9, 8}, {6, 5, 3, 3}, {2, 2, 1, 1, 1, 1}, "3x3 s2 p1"},
    {{3, 4, 7, 7}, {8, 4, 1, 1}, {2, 2, 0, 0, 1, 1}, "1x1 s2 downsample"},
    {{1, 3, 11, 10}, {4, 3, 7, 7}, {2, 2, 3, 3, 1, 1}, "7x7 s2 p3 stem"},
    {{2, 3, 8, 8}, {5, 3, 3, 3}, {1, 1, 2, 2, 2, 2}, "3x3 dilation 2"},
    {{2, 6, 5, 5}, {3, 6, 1, 1}, {1, 1, 0, 0, 1, 1}, "1x1 s1 pointwise"},
};
}  // namespace

TEST_CASE("conv2d forward/backward: cuDNN == CPU (fp32, NCHW, channels-last, strided input)") {
  Rng r(5);
  for (const ConvCase& c : kConvCases)
    for (MemoryFormat fmt : {kNCHW, kNHWC})
      for (bool strided_x : {false, true}) {
        CAPTURE(c.name);
        CAPTURE(int(fmt));
        CAPTURE(strided_x);
        Tensor x = strided_x ? strided(c.x, r) : randn_f(c.x, r, fmt);
        Tensor w = randn_f(c.w, r, fmt), bias = randn_f({c.w[0]}, r);
        Shape ys = K::conv2d_out_shape(c.x, c.w, c.a);
        Tensor y = empty(ys), dy = nan_out(ys, DType::f32, fmt);
        K::conv2d_forward(x, w, bias, c.a, y);
        K::conv2d_forward(dev(x), dev(w), dev(bias), c.a, dy);
        check_dev(dy, y, 1e-4, 1e-5);
        Tensor y0 = empty(ys), dy0 = nan_out(ys, DType::f32, fmt);
        K::conv2d_forward(x, w, Tensor(), c.a, y0);
        K::conv2d_forward(dev(x), dev(w), Tensor(), c.a, dy0);
        check_dev(dy0, y0, 1e-4, 1e-5);

        Tensor gy = randn_f(ys, r, fmt);
        Tensor gx = empty(c.x), dgx = nan_out(c.x, DType::f32, fmt);
        K::conv2d_backward_input(gy, w, c.a, gx);
        K::conv2d_backward_input(dev(gy), dev(w), c.a, dgx);
        check_dev(dgx, gx, 1e-4, 1e-5);
        Tensor gw = empty(c.w), dgw = nan_out(c.w);
        K::conv2d_backward_weight(gy, x, c.a, gw);
        K::conv2d_backward_weight(dev(gy), dev(x), c.a, dgw);
        check_dev(dgw, gw, 1e-4, 1e-5);
        Tensor gb = empty({c.w[0]}), dgb = nan_out({c.w[0]});
        K::conv2d_backward_bias(gy, gb);
        K::conv2d_backward_bias(dev(gy), dgb);
        check_dev(dgb, gb, 1e-5, 1e-5);
      }
}

TEST_CASE("conv2d: float64 through cuDNN's DOUBLE config") {
  Rng r(6);
  const ConvCase& c = kConvCases[1];
  Tensor x = randn_cpu(c.x, r, DType::f64), w = randn_cpu(c.w, r, DType::f64);
  Shape ys = K::conv2d_out_shape(c.x, c.w, c.a);
  Tensor y = empty(ys, {DType::f64}), dy = nan_out(ys, DType::f64);
  K::conv2d_forward(x, w, Tensor(), c.a, y);
  K::conv2d_forward(dev(x), dev(w), Tensor(), c.a, dy);
  check_dev(dy, y, 1e-12, 1e-12);
}

// -------------------------------------------------------------------------------------- batch norm

TEST_CASE("batch norm train/eval/backward: cuDNN == CPU, running statistics as the CPU path") {
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

TEST_CASE("batch norm: one value per channel in training is an error naming the input") {
  Tensor x = zeros({1, 3, 1, 1}, {DType::f32, gpu()});
  Tensor y = nan_out({1, 3, 1, 1}), sm = nan_out({3}), si = nan_out({3}), none;
  CHECK_THROWS_WITH(K::batch_norm_forward_train(x, Tensor(), Tensor(), none, none, 0.1, 1e-5, y, sm, si),
                    doctest::Contains("more than one value per channel"));
}

// ----------------------------------------------------------------------------------------- pooling

TEST_CASE("max_pool2d: values and torch indices exact; backward scatters the gradient") {
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

TEST_CASE("adaptive_avg_pool2d forward/backward: torch bins, NCHW and channels-last") {
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

// ------------------------------------------------------------------------------------------ linear

TEST_CASE("linear forward/backward: cuBLAS (row-major through column-major) == CPU") {
  Rng r(10);
  for (auto [N, I, O] : {std::tuple{5, 7, 3}, std::tuple{1, 16, 10}, std::tuple{9, 33, 17}}) {
    CAPTURE(N);
    CAPTURE(I);
    CAPTURE(O);
    Tensor x = randn_f({I, N}, r).transpose(0, 1);  // non-contiguous input
    Tensor w = randn_f({O, I}, r), b = randn_f({O}, r);
    Tensor y = empty({N, O}), dy = nan_out({N, O});
    K::linear_forward(x, w, b, y);
    K::linear_forward(dev(x), dev(w), dev(b), dy);
    check_dev(dy, y, 1e-4, 1e-5);
    K::linear_forward(x, w, Tensor(), y);
    Tensor dy0 = nan_out({N, O});
    K::linear_forward(dev(x), dev(w), Tensor(), dy0);
    check_dev(dy0, y, 1e-4, 1e-5);
    Tensor gy = randn_f({N, O}, r);
    Tensor gx = empty({N, I}), dgx = nan_out({N, I});
    K::linear_backward_input(gy, w, gx);
    K::linear_backward_input(dev(gy), dev(w), dgx);
    check_dev(dgx, gx, 1e-4, 1e-5);
    Tensor gw = empty({O, I}), dgw = nan_out({O, I});
    K::linear_backward_weight(gy, x, gw);
    K::linear_backward_weight(dev(gy), dev(x), dgw);
    check_dev(dgw, gw, 1e-4, 1e-5);
    Tensor gb = empty({O}), dgb = nan_out({O});
    K::linear_backward_bias(gy, gb);
    K::linear_backward_bias(dev(gy), dgb);
    check_dev(dgb, gb, 1e-6, 1e-6);
  }
}

// ------------------------------------------------------------------------------- softmax and loss

TEST_CASE("softmax / log_softmax forward and backward") {
  Rng r(11);
  for (Shape s : {Shape{4, 10}, Shape{3, 130}, Shape{1, 1}}) {
    CAPTURE(shape_str(s));
    Tensor x = randn_f(s, r) * 3.0, gy = randn_f(s, r);
    for (bool log : {false, true}) {
      CAPTURE(log);
      Tensor y = empty(s), dy = nan_out(s);
      (log ? K::log_softmax_forward : K::softmax_forward)(x, y);
      (log ? K::log_softmax_forward : K::softmax_forward)(dev(x), dy);
      check_dev(dy, y, 1e-6, 1e-6);
      Tensor gx = empty(s), dgx = nan_out(s);
      (log ? K::log_softmax_backward : K::softmax_backward)(gy, y, gx);
      (log ? K::log_softmax_backward : K::softmax_backward)(dev(gy), dev(y), dgx);
      check_dev(dgx, gx, 1e-5, 1e-6);
    }
  }
}

TEST_CASE("cross_entropy with label smoothing, mean and sum: loss, log-probs and gradient") {
  Rng r(12);
  for (auto [N, C] : {std::pair{4, 10}, std::pair{3, 131}, std::pair{1, 2}})
    for (double ls : {0.0, 0.1})
      for (K::Reduction red : {K::Reduction::mean, K::Reduction::sum}) {
        CAPTURE(N);
        CAPTURE(C);
        CAPTURE(ls);
        Tensor logits = randn_f({N, C}, r) * 2.0;
        std::vector<int64_t> t;
        for (int n = 0; n < N; ++n) t.push_back((n * 7 + 3) % C);
        Tensor target = from_vector_i64(t, {N});
        Tensor loss = empty({}), lp = empty({N, C}), dloss = nan_out({}), dlp = nan_out({N, C});
        K::cross_entropy_forward(logits, target, ls, red, loss, lp);
        K::cross_entropy_forward(dev(logits), dev(target), ls, red, dloss, dlp);
        check_dev(dloss, loss, 1e-6, 1e-6);
        check_dev(dlp, lp, 1e-6, 1e-6);
        Tensor g = scalar_tensor(0.75), gx = empty({N, C}), dgx = nan_out({N, C});
        K::cross_entropy_backward(g, lp, target, ls, red, gx);
        K::cross_entropy_backward(dev(g), dlp, dev(target), ls, red, dgx);
        check_dev(dgx, gx, 1e-6, 1e-7);
      }
  // An out-of-range target is found on the device: the loss is NaN at once, and the error is raised at
  // the next fence (no synchronising check inside the op), once.
  Tensor bad = from_vector_i64({1, 5}, {2});
  Tensor loss = empty({}, {DType::f32, gpu()}), lp = nan_out({2, 4});
  K::cross_entropy_forward(dev(randn_f({2, 4}, r)), dev(bad), 0.0, K::Reduction::mean, loss, lp);
  CHECK_THROWS_WITH_AS(K::fence(gpu()).wait(), doctest::Contains("target 5 at index 1 out of range for 4 classes"),
                       Error);
  CHECK(std::isnan(loss.cpu().item<float>()));
  CHECK_NOTHROW(K::fence(gpu()).wait());
}

// -------------------------------------------------------------------------------- optimizer updates

TEST_CASE("fused SGD / Adam / AdamW / RMSprop updates: device == CPU over 3 steps") {
  Rng r(13);
  Shape s{7, 37};  // 259 elements: two blocks
  Tensor p0 = randn_f(s, r);
  std::vector<Tensor> grads{randn_f(s, r), randn_f(s, r), randn_f(s, r)};
  auto check_run = [&](const char* name, auto&& step) {
    CAPTURE(name);
    Tensor pc = p0.clone(), pd = dev(p0);
    std::vector<Tensor> sc(3), sd(3);
    for (int i = 0; i < 3; ++i) {
      sc[i] = zeros(s);
      sd[i] = zeros(s, {DType::f32, gpu()});
    }
    for (int k = 0; k < 3; ++k) {
      step(pc, grads[size_t(k)], sc, k + 1);
      step(pd, dev(grads[size_t(k)]), sd, k + 1);
    }
    check_dev(pd, pc, 1e-6, 1e-7);
    for (int i = 0; i < 3; ++i) check_dev(sd[size_t(i)], sc[size_t(i)], 1e-6, 1e-7);
  };
  check_run("sgd nesterov wd", [](Tensor& p, const Tensor& g, std::vector<Tensor>& st, int k) {
    K::sgd_update_many({{&p, &g, &st[0], optim::SgdHyper{0.05, 0.9, 0.0, 5e-4, true, false}, k == 1}});
  });
  check_run("adam amsgrad", [](Tensor& p, const Tensor& g, std::vector<Tensor>& st, int k) {
    optim::AdamHyper h{1e-2, 0.9, 0.999, 1e-8, 1e-4, true, false, false};
    K::adam_update_many({{&p, &g, &st[0], &st[1], &st[2], optim::make_adam_step(h, k)}});
  });
  check_run("adamw", [](Tensor& p, const Tensor& g, std::vector<Tensor>& st, int k) {
    optim::AdamHyper h{2e-3, 0.9, 0.999, 1e-8, 1e-2, false, true, false};
    K::adam_update_many({{&p, &g, &st[0], &st[1], nullptr, optim::make_adam_step(h, k)}});
  });
  check_run("rmsprop centered momentum", [](Tensor& p, const Tensor& g, std::vector<Tensor>& st, int) {
    optim::RmspropHyper h{1e-2, 0.99, 1e-8, 1e-4, 0.9, true, false};
    K::rmsprop_update_many({{&p, &g, &st[0], &st[1], &st[2], h}});
  });
}

TEST_CASE("norms (1, 2, 3, inf) and clamp: device == CPU") {
  Rng r(14);
  std::vector<Tensor> xs{randn_f({5, 7}, r), randn_f({300}, r), randn_f({1}, r)};
  std::vector<Tensor> dxs;
  for (auto& x : xs) dxs.push_back(dev(x));
  for (double p : {1.0, 2.0, 3.0, std::numeric_limits<double>::infinity()}) {
    CAPTURE(p);
    CHECK_CLOSE(K::norms(dxs, p), K::norms(xs, p), 1e-12, 1e-12);
  }
  Tensor y = empty({300}), dy = nan_out({300});
  K::clamp(xs[1], -0.5, 0.25, y);
  K::clamp(dxs[1], -0.5, 0.25, dy);
  check_dev(dy, y, 0, 0);
}

// ------------------------------------------------------------------------------------------ memory

TEST_CASE("caching allocator: freed blocks are reused without new device allocations") {
  { Tensor warm = empty({1000}, {DType::f32, gpu()}); }
  uint64_t before = cuda::allocator_stats().device_mallocs;
  for (int i = 0; i < 5; ++i) {
    Tensor t = empty({1000}, {DType::f32, gpu()});
    t.fill_(1.0);
  }
  CHECK(cuda::allocator_stats().device_mallocs == before);
  CHECK(cuda::round_size(1) == 512);
  CHECK(cuda::round_size((size_t(1) << 20) + 1) == (size_t(2) << 20));
}

TEST_CASE("inv_sqrt_add (batch norm's eval invstd) on the device equals the CPU exactly") {
  Rng r(77);
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dt));
    Tensor x = K::sum_to(randn_cpu({3, 37}, r, dt), {37});
    Tensor var = empty({37}, {dt});
    K::mul(x, x, var);  // non-negative, like a running variance
    Tensor y = empty({37}, {dt}), dy = nan_out({37}, dt);
    K::inv_sqrt_add(var, 1e-5, y);
    K::inv_sqrt_add(dev(var), 1e-5, dy);
    check_dev(dy, y, 0, 0);
  }
}

TEST_CASE("upload / download queued with the compute, from pinned and pageable memory, and fences") {
  Rng r(91);
  Tensor host = randn_f({2, 3, 4, 5}, r, MemoryFormat::channels_last);
  // Pinned host memory, as the loader's batches and the trainer's loss buffers use.
  void* pinned = K::pinned_alloc(size_t(host.numel()) * sizeof(float));
  {
    Tensor pin = empty(host.shape(), {DType::f32, Device::cpu(), MemoryFormat::channels_last});
    Tensor d = empty(host.shape(), {DType::f32, gpu(), MemoryFormat::channels_last});
    K::upload(host, d);  // pageable
    K::fence(gpu()).wait();
    check_dev(d, host, 0, 0);
    Tensor back = from_storage(Storage::wrap(pinned, size_t(host.numel()) * sizeof(float), Device::cpu(), nullptr),
                               host.shape(), DType::f32, MemoryFormat::channels_last);
    K::download(d, back);
    K::fence(gpu()).wait();
    CHECK(back.to_vector<float>() == host.to_vector<float>());
    // The CPU "device": plain copies, fences always reached.
    K::upload(host, pin);
    K::fence(Device::cpu()).wait();
    CHECK(pin.to_vector<float>() == host.to_vector<float>());
    // Misuse: different strides, a device tensor on the host side, shape mismatch.
    Tensor nchw = empty(host.shape(), {DType::f32, gpu()});
    CHECK_THROWS_WITH_AS(K::upload(host, nchw), doctest::Contains("same strides"), Error);
    CHECK_THROWS_WITH_AS(K::upload(d, nchw), doctest::Contains("CPU tensor"), Error);
    Tensor small = empty({2, 3}, {DType::f32, gpu()});
    CHECK_THROWS_AS(K::download(small, pin), Error);
  }
  K::pinned_free(pinned);
}
