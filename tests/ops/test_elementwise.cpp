// The element-wise ops, copies and reductions (kernels/cpu/elementwise.cpp, kernels/cuda/elementwise.cu):
// the fused add_relu against the unfused relu(add()) it replaces, inv_sqrt_add's rounding, float64
// gradient checks; with a CUDA backend, the device against the CPU oracle: copies between every dtype
// pair and layout, fill, add/sub/mul/scale/relu/add_relu exactly, sum_all/sum_to in double (1e-6).
// relu's hand-computed values and its gradcheck share cases with pooling in tests/ops/test_pool.cpp.
#include <cmath>

#include "engine/functional.h"
#include "kernels/ops.h"
#include "tests/ops/ops_test_util.h"

using namespace rtune;
using namespace rtune::opstest;

// ----------------------------------------------------------------------------------------- forward

TEST_CASE("add_relu equals relu(add()) bit for bit, values and gradients (f32, f64; NCHW, channels-last, strided)") {
  Rng r(6);
  for (DType dt : {DType::f32, DType::f64})
    for (MemoryFormat fmt : {MemoryFormat::contiguous, MemoryFormat::channels_last}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(int(fmt));
      Tensor a = randn({3, 4, 5, 6}, r, {dt}).contiguous(fmt);
      Tensor b = randn({3, 4, 5, 9}, r, {dt}).narrow(3, 2, 6);  // strided along W
      // Exact ties at the kink and NaN: NaN + x -> 0 as relu maps NaN to 0.
      a.narrow(0, 0, 1).copy_(b.narrow(0, 0, 1) * -1.0);
      a.narrow(0, 1, 1).narrow(1, 0, 1).fill_(std::nan(""));
      Tensor y_ref = relu(add(a, b));
      Tensor y = add_relu(a, b);
      REQUIRE(y.is_contiguous(fmt));
      CHECK(y.to_vector<double>() == y_ref.to_vector<double>());
      CHECK(y.narrow(0, 1, 1).narrow(1, 0, 1).to_vector<double>() == std::vector<double>(30, 0.0));
      // Gradients through autograd: the same relu_backward handed to both inputs.
      Tensor probe = randn(a.shape(), r, {dt});
      auto grads = [&](bool fused) {
        Tensor ai = a.detach().clone(fmt).set_requires_grad(true), bi = b.detach().clone().set_requires_grad(true);
        Tensor out = fused ? add_relu(ai, bi) : relu(add(ai, bi));
        sum(mul(out, probe)).backward();
        return std::pair{ai.grad(), bi.grad()};
      };
      auto [ga, gb] = grads(true);
      auto [ga0, gb0] = grads(false);
      CHECK(ga.to_vector<double>() == ga0.to_vector<double>());
      CHECK(gb.to_vector<double>() == gb0.to_vector<double>());
    }
}

TEST_CASE("add_relu: the output is written everywhere and bad arguments throw") {
  Rng r(7);
  Tensor a = randn({2, 3, 4, 5}, r), b = randn({2, 3, 4, 5}, r);
  Tensor y = full(a.shape(), std::nan(""));
  kernels::add_relu_forward(a, b, y);
  CHECK(y.to_vector<double>() == relu(add(a, b)).to_vector<double>());
  Tensor bad_shape = empty({2, 3, 4, 4});
  CHECK_THROWS_AS(kernels::add_relu_forward(a, b, bad_shape), Error);
  CHECK_THROWS_AS(add_relu(a, b.to(DType::f64)), Error);
  CHECK_THROWS_AS(add_relu(a, randn({2, 3, 4, 4}, r)), Error);
  Tensor not_dense = empty({2, 3, 4, 7}).narrow(3, 0, 5);
  CHECK_THROWS_AS(kernels::add_relu_forward(a, b, not_dense), Error);
}

// NCHW <-> channels-last copies take a tiled transpose (kernels/cpu/elementwise.cpp); every dtype, odd
// sizes and one-channel / one-pixel tensors (dense in both layouts) equal the element-by-element copy.
TEST_CASE("copy between NCHW and channels-last: every dtype and odd shapes equal element by element") {
  Rng r(37);
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::i64, DType::u8}) {
    for (Shape s : {Shape{3, 5, 33, 37}, Shape{2, 1, 4, 3}, Shape{2, 40, 1, 1}, Shape{1, 70, 2, 35}}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(shape_str(s));
      std::vector<double> v(size_t(shape_numel(s)));
      for (size_t i = 0; i < v.size(); ++i) v[i] = double((i * 37 + size_t(r.randint(0, 3))) % 97);  // exact in every dtype
      Tensor x = from_vector(v, s, DType::f64).to(dt);
      std::vector<double> want = x.to(DType::f64).to_vector<double>();
      Tensor cl = empty(s, {dt, Device::cpu(), MemoryFormat::channels_last});
      kernels::copy(x, cl);
      Tensor back = empty(s, {dt});
      kernels::copy(cl, back);
      CHECK(back.to(DType::f64).to_vector<double>() == want);
      for (int64_t n = 0; n < s[0]; ++n)  // spot-check the channels-last addresses themselves
        for (int64_t c = 0; c < s[1]; c += 3) {
          const int64_t h = s[2] - 1, w = s[3] / 2;
          CHECK(cl.select(0, n).select(0, c).select(0, h).select(0, w).to(DType::f64).item<double>() ==
                want[size_t(((n * s[1] + c) * s[2] + h) * s[3] + w)]);
        }
    }
  }
}

// Large dense copies in the same layout are split over the threads in 256 KiB pieces: a size that is no
// multiple of the piece, in both layouts, must arrive whole and leave nothing around it written.
TEST_CASE("copy of a large dense tensor (spread over the threads): every element, nothing beyond") {
  Rng r(7);
  for (MemoryFormat fmt : {MemoryFormat::contiguous, MemoryFormat::channels_last}) {
    const Shape s{3, 7, 181, 173};  // 657,531 floats, ~2.5 MiB
    Tensor src = empty(s, {DType::f32, Device::cpu(), fmt});
    src.copy_(randn(s, r, {DType::f32}));
    Tensor wide = full({int64_t(src.numel()) + 2}, -7.0, {DType::f32});
    Tensor dst = wide.narrow(0, 1, src.numel());
    Tensor dst4 = empty(s, {DType::f32, Device::cpu(), fmt});
    kernels::copy(src, dst4);
    CHECK(dst4.to_vector<float>() == src.to_vector<float>());
    kernels::copy(src.contiguous().view({src.numel()}), dst);
    std::vector<float> w = wide.to_vector<float>(), want = src.contiguous().to_vector<float>();
    CHECK(w.front() == -7.0f);
    CHECK(w.back() == -7.0f);
    CHECK(std::equal(want.begin(), want.end(), w.begin() + 1));
  }
}

TEST_CASE("inv_sqrt_add: 1/sqrt(x + s) with the add in the tensor's dtype and the root in double") {
  const std::vector<double> v{0.0, 1e-3, 0.25, 1.0, 3.7, 1234.5};
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dt));
    Tensor x = from_vector(v, {6}, dt), y = empty({6}, {dt});
    kernels::inv_sqrt_add(x, 1e-5, y);
    std::vector<double> got = y.to_vector<double>();
    for (size_t i = 0; i < v.size(); ++i) {
      const double expect = dt == DType::f32 ? double(float(1.0 / std::sqrt(double(float(v[i]) + float(1e-5)))))
                                             : 1.0 / std::sqrt(v[i] + 1e-5);
      CHECK(got[i] == expect);
    }
  }
}

// ------------------------------------------------------------------------------ gradient checks

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

#if defined(RTUNE_TEST_HAS_CUDA)
// ------------------------------------------------------------------------------------ CPU vs CUDA

using namespace rtune::cudatest;
namespace K = rtune::kernels;

CUDA_TEST_CASE("copy: every dtype pair through strided views equals the CPU conversion") {
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

CUDA_TEST_CASE("copy: NCHW <-> channels-last and into a strided destination") {
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

CUDA_TEST_CASE("fill: every dtype, strided view, neighbours untouched") {
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

CUDA_TEST_CASE("add/sub/mul/add_/scale/add_scalar/relu: exact, NCHW, channels-last and strided inputs") {
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

CUDA_TEST_CASE("add_relu: exact, f32/f64, NCHW, channels-last and strided inputs, NaN -> 0 as relu") {
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

CUDA_TEST_CASE("add_relu autograd on the device == CPU (values and both gradients)") {
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

CUDA_TEST_CASE("sum_all and sum_to: double accumulation") {
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

CUDA_TEST_CASE("inv_sqrt_add (batch norm's eval invstd) on the device equals the CPU exactly") {
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
#endif  // RTUNE_TEST_HAS_CUDA
