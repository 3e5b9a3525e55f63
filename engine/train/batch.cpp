#include "engine/train/batch.h"

namespace rtune::train {

Tensor images_to_tensor(const io::Batch& b, const io::Normalize& norm, DType dtype, Device device) {
  const int64_t n = b.size, h = b.height, w = b.width, plane = h * w;
  RTUNE_CHECK(int64_t(b.images.size()) == n * plane * 3, "images_to_tensor: batch holds {} bytes, {}x{}x{}x3 needs {}",
              b.images.size(), n, h, w, n * plane * 3);
  RTUNE_CHECK(dtype == DType::f32 || dtype == DType::f64, "images_to_tensor: dtype must be float32 or float64");
  Tensor out = empty({n, 3, h, w}, {dtype});
  auto fill = [&](auto* o) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < 3; ++c) {
        const uint8_t* src = b.images.data() + i * plane * 3 + c;
        auto* dst = o + (i * 3 + c) * plane;
        const float m = norm.mean[size_t(c)], s = norm.std[size_t(c)];
        for (int64_t p = 0; p < plane; ++p) dst[p] = (float(src[p * 3]) / 255.0f - m) / s;
      }
  };
  if (dtype == DType::f32) fill(out.data<float>());
  else fill(out.data<double>());
  return device.is_cpu() ? out : out.to(device);
}

Tensor labels_to_tensor(const io::Batch& b, Device device) {
  RTUNE_CHECK(int64_t(b.labels.size()) == b.size, "labels_to_tensor: {} labels for a batch of {}", b.labels.size(), b.size);
  Tensor t = from_vector_i64(b.labels, {b.size});
  return device.is_cpu() ? t : t.to(device);
}

}  // namespace rtune::train
