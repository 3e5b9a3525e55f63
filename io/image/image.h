// An 8-bit RGB image in HWC order: what PIL's Image.convert("RGB") holds, as a plain buffer.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace rtune::io {

struct Image {
  int height = 0, width = 0;
  std::vector<uint8_t> pixels;  // HWC RGB, 3 channels, row-major, size height*width*3

  Image() = default;
  Image(int h, int w) : height(h), width(w), pixels(size_t(h) * size_t(w) * 3) {}
  Image(int h, int w, uint8_t fill) : height(h), width(w), pixels(size_t(h) * size_t(w) * 3, fill) {}

  bool empty() const { return height == 0 || width == 0; }
  size_t row_bytes() const { return size_t(width) * 3; }
  uint8_t* at(int y, int x) { return pixels.data() + (size_t(y) * size_t(width) + size_t(x)) * 3; }
  const uint8_t* at(int y, int x) const { return pixels.data() + (size_t(y) * size_t(width) + size_t(x)) * 3; }
};

}  // namespace rtune::io
