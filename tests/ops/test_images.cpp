// normalize_images (kernels/cpu/images.cpp, kernels/cuda/images.cu): on the CPU against the reference
// formula of torchvision's ToTensor + Normalize as the trainer computed it before (per element, in
// float32: (float(v) / 255 - mean) / std), bit for bit, for every output dtype and both output
// layouts, and its argument checks; with a CUDA backend, the device equals the CPU exactly.
#include <cmath>
#include <cstring>

#include "engine/half.h"
#include "kernels/ops.h"
#include "tests/ops/ops_test_util.h"

using namespace rtune;
using namespace rtune::opstest;
namespace K = rtune::kernels;

namespace {
constexpr std::array<float, 3> kMean{0.485f, 0.456f, 0.406f}, kStd{0.229f, 0.224f, 0.225f};

// Interleaved HWC bytes covering all 256 values, as a channels-last u8 [n, 3, h, w] tensor.
Tensor image_bytes(int64_t n, int64_t h, int64_t w, std::vector<uint8_t>& bytes) {
  bytes.resize(size_t(n * h * w * 3));
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t((i * 37 + 11 + i / 256) % 256);
  Tensor t = empty({n, 3, h, w}, {DType::u8, Device::cpu(), MemoryFormat::channels_last});
  std::memcpy(t.raw_data(), bytes.data(), bytes.size());
  return t;
}
// The old finetune/batch.cpp loop: float32 NCHW values.
std::vector<float> reference(const std::vector<uint8_t>& bytes, int64_t n, int64_t h, int64_t w) {
  const int64_t plane = h * w;
  std::vector<float> out(size_t(n * 3 * plane));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < 3; ++c) {
      const uint8_t* src = bytes.data() + i * plane * 3 + c;
      float* dst = out.data() + (i * 3 + c) * plane;
      for (int64_t p = 0; p < plane; ++p) dst[p] = (float(src[p * 3]) / 255.0f - kMean[size_t(c)]) / kStd[size_t(c)];
    }
  return out;
}
// The reference rounded to `dt` as torch's .to() rounds, read back as doubles in NCHW order.
std::vector<double> reference_as(const std::vector<float>& ref, DType dt) {
  std::vector<double> out(ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    float f = ref[i];
    if (dt == DType::bf16) f = bf16_to_float(float_to_bf16(f));
    if (dt == DType::f16) f = f16_to_float(float_to_f16(f));
    out[i] = double(f);
  }
  return out;
}
}  // namespace

// ------------------------------------------------------------------------------------------- CPU

TEST_CASE("normalize_images (cpu) equals the per-element float32 formula bit for bit: dtypes x layouts") {
  std::vector<uint8_t> bytes;
  const int64_t n = 3, h = 7, w = 5;
  Tensor images = image_bytes(n, h, w, bytes);
  std::vector<float> ref = reference(bytes, n, h, w);
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16})
    for (MemoryFormat fmt : {MemoryFormat::contiguous, MemoryFormat::channels_last}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(int(fmt));
      Tensor y = empty({n, 3, h, w}, {dt, Device::cpu(), fmt});
      y.fill_(std::nan(""));  // an element never written stays NaN and fails the comparison
      K::normalize_images(images, kMean, kStd, y);
      REQUIRE(y.is_contiguous(fmt));
      CHECK(y.to_vector<double>() == reference_as(ref, dt));  // to_vector walks NCHW order
    }
}

TEST_CASE("normalize_images (cpu): a large batch takes the threaded path and still matches") {
  std::vector<uint8_t> bytes;
  const int64_t n = 4, h = 67, w = 61;  // 4·67·61 = 16348 pixels per layout pass, above the OpenMP cut
  Tensor images = image_bytes(n, h, w, bytes);
  std::vector<double> ref = reference_as(reference(bytes, n, h, w), DType::f32);
  for (MemoryFormat fmt : {MemoryFormat::contiguous, MemoryFormat::channels_last}) {
    Tensor y = full({n, 3, h, w}, std::nan(""), {DType::f32, Device::cpu(), fmt});
    K::normalize_images(images, kMean, kStd, y);
    CHECK(y.to_vector<double>() == ref);
  }
}

TEST_CASE("normalize_images (cpu): 1x1 images, an empty batch and an offset view of the bytes") {
  std::vector<uint8_t> bytes;
  Tensor images = image_bytes(4, 1, 1, bytes);
  Tensor y = full({4, 3, 1, 1}, std::nan(""));
  K::normalize_images(images, kMean, kStd, y);
  CHECK(y.to_vector<double>() == reference_as(reference(bytes, 4, 1, 1), DType::f32));
  Tensor none = empty({0, 3, 2, 2}, {DType::u8, Device::cpu(), MemoryFormat::channels_last});
  Tensor y0 = empty({0, 3, 2, 2});
  K::normalize_images(none, kMean, kStd, y0);
  CHECK(y0.numel() == 0);
  // Images 1..2 of a batch of 3: a view with a storage offset.
  Tensor all = image_bytes(3, 4, 5, bytes);
  Tensor tail = all.narrow(0, 1, 2);
  Tensor yt = full({2, 3, 4, 5}, std::nan(""));
  K::normalize_images(tail, kMean, kStd, yt);
  std::vector<uint8_t> tail_bytes(bytes.begin() + 60, bytes.end());
  CHECK(yt.to_vector<double>() == reference_as(reference(tail_bytes, 2, 4, 5), DType::f32));
}

TEST_CASE("normalize_images rejects bad arguments with a clear error") {
  std::vector<uint8_t> bytes;
  Tensor images = image_bytes(2, 4, 5, bytes);
  Tensor y = empty({2, 3, 4, 5});
  SUBCASE("input not uint8") {
    Tensor f = images.to(DType::f32);
    CHECK_THROWS_WITH_AS(K::normalize_images(f, kMean, kStd, y), doctest::Contains("uint8"), Error);
  }
  SUBCASE("input not [N, 3, H, W]") {
    Tensor four = empty({2, 4, 4, 5}, {DType::u8, Device::cpu(), MemoryFormat::channels_last});
    CHECK_THROWS_WITH_AS(K::normalize_images(four, kMean, kStd, y), doctest::Contains("[N, 3, H, W]"), Error);
    Tensor flat = empty({2, 60}, {DType::u8});
    CHECK_THROWS_WITH_AS(K::normalize_images(flat, kMean, kStd, y), doctest::Contains("[N, 3, H, W]"), Error);
  }
  SUBCASE("input NCHW planes instead of interleaved bytes") {
    Tensor planar = images.contiguous();
    CHECK_THROWS_WITH_AS(K::normalize_images(planar, kMean, kStd, y), doctest::Contains("channels-last"), Error);
  }
  SUBCASE("output not floating") {
    Tensor yi = empty({2, 3, 4, 5}, {DType::u8});
    CHECK_THROWS_WITH_AS(K::normalize_images(images, kMean, kStd, yi), doctest::Contains("output must be"), Error);
  }
  SUBCASE("output shape differs") {
    Tensor ys = empty({2, 3, 5, 4});
    CHECK_THROWS_WITH_AS(K::normalize_images(images, kMean, kStd, ys), doctest::Contains("output must be"), Error);
  }
  SUBCASE("output not dense") {
    Tensor yv = empty({2, 3, 4, 7}).narrow(3, 1, 5);
    CHECK_THROWS_WITH_AS(K::normalize_images(images, kMean, kStd, yv), doctest::Contains("dense"), Error);
  }
}

#if defined(RTUNE_TEST_HAS_CUDA)
// ------------------------------------------------------------------------------------ CPU vs CUDA

using namespace rtune::cudatest;

namespace {
// The same images when the bytes themselves are not needed.
Tensor image_bytes(int64_t n, int64_t h, int64_t w) {
  std::vector<uint8_t> bytes;
  return image_bytes(n, h, w, bytes);
}
}  // namespace

CUDA_TEST_CASE("normalize_images: exact vs the CPU, every output dtype, NCHW and channels-last outputs") {
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

CUDA_TEST_CASE("normalize_images: 1x1 images, an offset view, and mismatched devices") {
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
#endif  // RTUNE_TEST_HAS_CUDA
