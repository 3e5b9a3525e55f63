// Tensor core: shapes, strides, views sharing storage, channels-last, dtype conversion (incl. bf16/f16
// rounding), device rules, clear errors, and the seeded RNG.
#include <cmath>
#include "engine/functional.h"
#include "engine/half.h"
#include "tests/core/test_util.h"

using namespace rtune;

TEST_CASE("contiguous and channels-last strides") {
  Tensor t = empty({2, 3, 4, 5});
  CHECK(t.strides() == Shape{60, 20, 5, 1});
  CHECK(t.is_contiguous());
  CHECK_FALSE(t.is_contiguous(MemoryFormat::channels_last));
  Tensor cl = empty({2, 3, 4, 5}, {DType::f32, Device::cpu(), MemoryFormat::channels_last});
  CHECK(cl.strides() == Shape{60, 1, 15, 3});
  CHECK(cl.is_contiguous(MemoryFormat::channels_last));
  CHECK_FALSE(cl.is_contiguous());
}

TEST_CASE("views share storage; contiguous copies only when needed") {
  Tensor a = arange(24, {DType::f32}).view({2, 3, 4});
  Tensor t = a.transpose(0, 2);  // 4×3×2
  CHECK(t.shape() == Shape{4, 3, 2});
  CHECK(t.strides() == Shape{1, 4, 12});
  CHECK(t.storage().same_as(a.storage()));
  CHECK_FALSE(t.is_contiguous());
  Tensor c = t.contiguous();
  CHECK_FALSE(c.storage().same_as(a.storage()));
  CHECK(a.contiguous().same(a));
  // Element (i,j,k) of the transpose is a[k][j][i].
  std::vector<float> v = c.to_vector<float>();
  CHECK(v[size_t((3 * 3 + 1) * 2 + 1)] == float(1 * 12 + 1 * 4 + 3));

  Tensor n = a.narrow(2, 1, 2);
  CHECK(n.offset() == 1);
  CHECK(n.shape() == Shape{2, 3, 2});
  CHECK(n.to_vector<float>() == std::vector<float>{1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22});
  n.fill_(-1);  // writes through to the base
  CHECK(a.to_vector<float>()[1] == -1);
  CHECK(a.to_vector<float>()[0] == 0);

  Tensor s = arange(10, {DType::f64}).slice(0, 1, 9, 3);
  CHECK(s.to_vector<double>() == std::vector<double>{1, 4, 7});
  Tensor e = arange(3, {DType::f64}).view({3, 1}).expand({3, 4});
  CHECK(e.strides() == Shape{1, 0});
  CHECK(e.contiguous().to_vector<double>() == std::vector<double>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2});
  CHECK(a.select(1, 2).shape() == Shape{2, 4});
  CHECK(a.flatten().shape() == Shape{24});
  CHECK(a.reshape({-1, 4}).shape() == Shape{6, 4});
  // reshape of a non-viewable tensor copies; view refuses.
  CHECK_THROWS_WITH_AS(t.view({24}), doctest::Contains("without a copy"), Error);
  CHECK(t.reshape({24}).is_contiguous());
  // A view through a permute back to NCHW keeps channels-last strides.
  Tensor nhwc = arange(2 * 4 * 5 * 3, {DType::f32}).view({2, 4, 5, 3});
  Tensor nchw = nhwc.permute({0, 3, 1, 2});
  CHECK(nchw.is_contiguous(MemoryFormat::channels_last));
  CHECK(nchw.contiguous(MemoryFormat::channels_last).same(nchw));
  Tensor back = nchw.contiguous().contiguous(MemoryFormat::channels_last);
  CHECK(back.to_vector<float>() == nchw.to_vector<float>());
}

TEST_CASE("dtype conversion: f64/f32/i64/u8 and bf16/f16 round to nearest even") {
  Tensor d = from_vector({1.5, -2.25, 1e10, 3.0}, {4}, DType::f64);
  CHECK(d.to(DType::i64).to_vector<int64_t>() == std::vector<int64_t>{1, -2, 10000000000, 3});
  CHECK(from_vector({0, 200, 255}, {3}, DType::u8).to(DType::f32).to_vector<float>() == std::vector<float>{0, 200, 255});
  // bf16 keeps 8 bits of mantissa: 1 + 2^-8 is a tie and rounds to even (1.0); 1 + 3*2^-8 rounds up.
  CHECK(bf16_to_float(float_to_bf16(1.0f + 0x1p-8f)) == 1.0f);
  CHECK(bf16_to_float(float_to_bf16(1.0f + 3 * 0x1p-8f)) == 1.0f + 0x1p-6f);
  CHECK(std::isnan(bf16_to_float(float_to_bf16(NAN))));
  // f16: max, overflow to inf, subnormals, ties to even.
  CHECK(f16_to_float(float_to_f16(65504.f)) == 65504.f);
  CHECK(std::isinf(f16_to_float(float_to_f16(65520.f))));
  CHECK(f16_to_float(float_to_f16(0x1p-24f)) == 0x1p-24f);
  CHECK(f16_to_float(float_to_f16(0x1p-25f)) == 0.f);
  CHECK(f16_to_float(float_to_f16(3 * 0x1p-25f)) == 0x1p-23f);
  CHECK(f16_to_float(float_to_f16(1.0f + 0x1p-11f)) == 1.0f);
  CHECK(f16_to_float(float_to_f16(1.0f + 3 * 0x1p-11f)) == 1.0f + 0x1p-9f);
  Tensor h = from_vector({0.1, -3.5, 1000.25}, {3}, DType::f16);
  CHECK(h.dtype() == DType::f16);
  CHECK(h.to(DType::f32).to_vector<float>() ==
        std::vector<float>{f16_to_float(float_to_f16(0.1f)), -3.5f, 1000.0f});
  Tensor b = from_vector({0.1, -3.5}, {2}, DType::bf16);
  CHECK(b.to(DType::f64).to_vector<double>()[1] == -3.5);
}

TEST_CASE("mismatched shapes, dtypes and devices are errors naming the op and both operands") {
  Tensor a = zeros({2, 3}), b = zeros({3, 2}), c = zeros({2, 3}, {DType::f64});
  CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("add: operands of different shapes: float32[2, 3] on cpu and float32[3, 2] on cpu"), Error);
  CHECK_THROWS_WITH_AS(add(a, c), doctest::Contains("float64[2, 3]"), Error);
  // Never an implicit copy between devices: without a CUDA backend, or with one on a machine without a
  // GPU, .to(cuda) is a clear error; with a device (real or simulated), mixing devices in an op is.
  bool has_cuda = true;
  try {
    (void)a.to(Device::cuda(0));
  } catch (const Error& e) {
    has_cuda = false;
    const std::string what = e.what();
    CAPTURE(what);
    CHECK((what.find("built without CUDA") != std::string::npos || what.find("no CUDA GPU found") != std::string::npos));
  }
  if (has_cuda)
    CHECK_THROWS_WITH_AS(add(a, a.to(Device::cuda(0))), doctest::Contains("operands on different devices"), Error);
  CHECK_THROWS_WITH_AS(conv2d(zeros({1, 3, 8, 8}), zeros({4, 2, 3, 3}), Tensor(), {}),
                       doctest::Contains("3 channels but weight"), Error);
  CHECK_THROWS_WITH_AS(linear(zeros({2, 5}), zeros({3, 4}), Tensor()), doctest::Contains("linear"), Error);
  CHECK_THROWS_AS(Device::parse("gpu"), Error);
  CHECK(Device::parse("cuda:1") == Device::cuda(1));
  CHECK_THROWS_WITH_AS(empty({2, -1}), doctest::Contains("negative dimension"), Error);
  CHECK_THROWS_WITH_AS(empty({INT64_MAX / 2, 4}), doctest::Contains("too many elements"), Error);
  Tensor i = zeros({2}, {DType::i64});
  CHECK_THROWS_AS(i.data<float>(), Error);
  CHECK_THROWS_AS(i.set_requires_grad(true), Error);
}

TEST_CASE("Rng: seeded, reproducible, restorable; uniform/normal/bernoulli/permutation statistics") {
  Rng a(42), b(42), c(43);
  std::vector<double> va, vb, vc;
  for (int i = 0; i < 100; ++i) {
    va.push_back(a.normal());
    vb.push_back(b.normal());
    vc.push_back(c.normal());
  }
  CHECK(va == vb);
  CHECK(va != vc);
  std::string st = a.state();
  double next = a.uniform(), next_n = a.normal();
  Rng d(0);
  d.set_state(st);
  CHECK(d.uniform() == next);
  CHECK(d.normal() == next_n);

  Rng r(7);
  const int n = 200000;
  double s = 0, s2 = 0, u = 0;
  int64_t ones_count = 0;
  for (int i = 0; i < n; ++i) {
    double z = r.normal();
    s += z;
    s2 += z * z;
    u += r.uniform();
    ones_count += r.bernoulli(0.3);
  }
  CHECK(std::abs(s / n) < 0.01);
  CHECK(std::abs(s2 / n - 1) < 0.01);
  CHECK(std::abs(u / n - 0.5) < 0.005);
  CHECK(std::abs(double(ones_count) / n - 0.3) < 0.005);
  std::vector<int64_t> p = r.permutation(1000);
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) CHECK(sorted[size_t(i)] == i);
  CHECK(p != sorted);
  CHECK(Rng::for_key(5, 0).next_u64() != Rng::for_key(5, 1).next_u64());
  // shuffle() of 0..n-1 and permutation(n) make the same draws, so they give the same order.
  std::vector<int64_t> shuffled(50);
  for (int64_t i = 0; i < 50; ++i) shuffled[size_t(i)] = i;
  Rng by_shuffle(4), by_permutation(4);
  by_shuffle.shuffle(std::span<int64_t>(shuffled));
  CHECK(shuffled == by_permutation.permutation(50));
  Rng t1(9), t2(9);
  CHECK(randn({3, 4}, t1).to_vector<float>() == randn({3, 4}, t2).to_vector<float>());
}

// Large host blocks are reused instead of unmapped (engine/storage.cpp): a training step's activations
// then fault no pages after the first step. Small ones stay with malloc. Not under AddressSanitizer,
// which must see every free.
TEST_CASE("host storage: a freed large block is reused for the same size; small blocks are malloc's") {
#if defined(__SANITIZE_ADDRESS__)
  MESSAGE("skipped: AddressSanitizer build (blocks are freed at once)");
#else
  void* first = nullptr;
  {
    Tensor big = empty({3, 1 << 20});  // 12 MiB, above glibc's mmap threshold
    first = big.raw_data();
  }
  Tensor again = empty({3, 1 << 20});
  CHECK(again.raw_data() == first);
  Tensor other = empty({5, 1 << 20});  // another size: never handed a smaller block
  CHECK(other.raw_data() != first);
  std::fill_n(other.data<float>(), other.numel(), 1.0f);  // writable end to end (ASan-free builds too)
  CHECK(other.data<float>()[other.numel() - 1] == 1.0f);
#endif
}
