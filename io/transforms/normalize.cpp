// ToTensor/Normalize (see tensor.h). Kept as two float32 operations per element, in torchvision's
// order, so results are bit-identical to torch on CPU.
#include "io/transforms/normalize.h"

#include "engine/error.h"

namespace rtune::io {

void to_tensor(const Image& img, std::span<float> out, const Normalize* norm) {
  const size_t plane = size_t(img.height) * size_t(img.width);
  RTUNE_CHECK(out.size() == plane * 3, "to_tensor: output holds {} floats, image needs {}", out.size(), plane * 3);
  for (int c = 0; c < 3; ++c) {
    float* o = out.data() + plane * size_t(c);
    const uint8_t* p = img.pixels.data() + c;
    if (norm) {
      const float m = norm->mean[c], s = norm->std[c];
      for (size_t i = 0; i < plane; ++i) o[i] = (float(p[i * 3]) / 255.0f - m) / s;
    } else {
      for (size_t i = 0; i < plane; ++i) o[i] = float(p[i * 3]) / 255.0f;
    }
  }
}

std::vector<float> to_tensor(const Image& img, const Normalize* norm) {
  std::vector<float> out(size_t(img.height) * size_t(img.width) * 3);
  to_tensor(img, out, norm);
  return out;
}

}  // namespace rtune::io
