// An 8-bit RGB image in HWC order: what PIL's Image.convert("RGB") holds, as a plain buffer.
#pragma once
#include <algorithm>
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

// Read-only pixels of a packed HWC RGB image held elsewhere (an Image, the decoded-image cache).
struct ImageView {
  const uint8_t* data = nullptr;
  int height = 0, width = 0;

  ImageView() = default;
  ImageView(const uint8_t* d, int h, int w) : data(d), height(h), width(w) {}
  ImageView(const Image& img) : data(img.pixels.data()), height(img.height), width(img.width) {}  // NOLINT: implicit

  size_t row_bytes() const { return size_t(width) * 3; }
  size_t bytes() const { return size_t(height) * row_bytes(); }
  Image copy() const {
    Image img(height, width);
    if (bytes()) std::copy_n(data, bytes(), img.pixels.data());
    return img;
  }
};

// A rectangle of pixels: rows [top, top + height), columns [left, left + width).
struct CropBox {
  int top = 0, left = 0, height = 0, width = 0;
};

// Part of a larger image: `pixels` holds rows [top, top + pixels.height) and columns
// [left, left + pixels.width) of a full_height x full_width image (a partially decoded JPEG).
struct ImageWindow {
  Image pixels;
  int top = 0, left = 0, full_height = 0, full_width = 0;
};

}  // namespace rtune::io
