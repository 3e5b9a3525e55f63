// CPU normalize_images: torchvision's ToTensor + Normalize on a batch of interleaved HWC uint8 images,
// (float(v) / 255 - mean[c]) / std[c] in float32, then rounded to the output dtype (f64 widens the
// float32 result, as collating torch's float32 samples into a double tensor would). The façade
// (kernels/dispatch.cpp) has checked dtypes, shapes and layouts.
#include <omp.h>
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"

namespace rtune::cpu {

namespace {

// The per-element float32 formula; D is the output dtype (storage_t<D> its storage).
template <class D> inline storage_t<D> normalized(uint8_t v, float mean, float stddev) {
  return convert_elem<D, float>((float(v) / 255.0f - mean) / stddev);
}

template <class D>
void normalize_into(const uint8_t* x, storage_t<D>* y, int64_t n, int64_t plane, bool channels_last,
                    const std::array<float, 3>& mean, const std::array<float, 3>& stddev) {
  const float m0 = mean[0], m1 = mean[1], m2 = mean[2], s0 = stddev[0], s1 = stddev[1], s2 = stddev[2];
  if (channels_last) {  // same interleaved order as the input: one linear sweep over pixels
    const int64_t pixels = n * plane;
#pragma omp parallel for if (pixels > (1 << 14)) schedule(static)
    for (int64_t p = 0; p < pixels; ++p) {
      y[p * 3 + 0] = normalized<D>(x[p * 3 + 0], m0, s0);
      y[p * 3 + 1] = normalized<D>(x[p * 3 + 1], m1, s1);
      y[p * 3 + 2] = normalized<D>(x[p * 3 + 2], m2, s2);
    }
    return;
  }
  // NCHW: each (image, channel) plane is written contiguously, reading every third byte.
#pragma omp parallel for collapse(2) if (n * plane > (1 << 14)) schedule(static)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < 3; ++c) {
      const uint8_t* src = x + i * plane * 3 + c;
      storage_t<D>* dst = y + (i * 3 + c) * plane;
      const float m = mean[size_t(c)], s = stddev[size_t(c)];
      for (int64_t p = 0; p < plane; ++p) dst[p] = normalized<D>(src[p * 3], m, s);
    }
}

}  // namespace

void normalize_images(const Tensor& images, const std::array<float, 3>& mean, const std::array<float, 3>& stddev,
                      Tensor& y) {
  const int64_t n = images.size(0), plane = images.size(2) * images.size(3);
  // When both layouts describe the same memory (1×1 images), either loop is right.
  const bool channels_last = !y.is_contiguous();
  const auto* x = static_cast<const uint8_t*>(images.raw_data());
  auto run = [&](auto tag) {
    using D = decltype(tag);
    normalize_into<D>(x, static_cast<storage_t<D>*>(y.raw_data()), n, plane, channels_last, mean, stddev);
  };
  switch (y.dtype()) {
    case DType::f32: run(float{}); return;
    case DType::f64: run(double{}); return;
    case DType::bf16: run(BF16Tag{}); return;
    case DType::f16: run(F16Tag{}); return;
    default: fail("normalize_images: output must be a floating tensor, got {}", y.str());
  }
}

}  // namespace rtune::cpu
