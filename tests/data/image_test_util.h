// Helpers shared by the data_* tests: fixture paths, reference images from safetensors, and an image
// comparison that reports the worst pixel.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "io/image/image.h"
#include "io/formats/safetensors.h"

namespace rtune::test {

inline std::string fixture(std::string_view rel) { return std::string(RTUNE_SOURCE_DIR "/tests/fixtures/") + std::string(rel); }

// An HWC uint8 tensor of a safetensors file as an Image.
inline io::Image ref_image(const io::SafetensorsFile& f, std::string_view key) {
  const io::SafetensorsView& v = f.at(key);
  REQUIRE_MESSAGE(v.shape.size() == 3, key);
  REQUIRE_MESSAGE(v.shape[2] == 3, key);
  io::Image img(int(v.shape[0]), int(v.shape[1]));
  img.pixels = f.copy_as<uint8_t>(key);
  return img;
}

struct ImageDiff {
  bool same_shape = false;
  int max_abs = 0;
  double mean_abs = 0;
  size_t count_over_0 = 0;
  std::string worst;  // "(y, x, c): got G, want W"
};

inline ImageDiff diff(const io::Image& got, const io::Image& want) {
  ImageDiff d;
  d.same_shape = got.height == want.height && got.width == want.width && got.pixels.size() == want.pixels.size();
  if (!d.same_shape) {
    d.worst = fmt::format("shape {}x{} vs {}x{}", got.height, got.width, want.height, want.width);
    d.max_abs = 256;
    return d;
  }
  double sum = 0;
  size_t worst_i = 0;
  for (size_t i = 0; i < got.pixels.size(); ++i) {
    int e = std::abs(int(got.pixels[i]) - int(want.pixels[i]));
    sum += e;
    d.count_over_0 += e > 0;
    if (e > d.max_abs) d.max_abs = e, worst_i = i;
  }
  d.mean_abs = got.pixels.empty() ? 0 : sum / double(got.pixels.size());
  size_t p = worst_i / 3;
  d.worst = fmt::format("({}, {}, {}): got {}, want {}", p / size_t(got.width), p % size_t(got.width), worst_i % 3,
                        got.pixels[worst_i], want.pixels[worst_i]);
  return d;
}

// CHECKs |got - want| <= tol everywhere, printing the worst pixel on failure; returns the diff.
#define CHECK_IMAGE_NEAR(got, want, tol, label)                                                              \
  [&] {                                                                                                      \
    auto _d = ::rtune::test::diff((got), (want));                                                            \
    INFO(label << ": max |diff| " << _d.max_abs << " at " << _d.worst << ", mean " << _d.mean_abs << ", " \
               << _d.count_over_0 << " values differ");                                                     \
    CHECK(_d.same_shape);                                                                                    \
    CHECK(_d.max_abs <= (tol));                                                                              \
    return _d;                                                                                               \
  }()

// A partial decode's window: it holds `box`, and every pixel of the box equals the full decode's.
inline void check_window(const io::ImageWindow& w, const io::Image& full, const io::CropBox& box, const std::string& what) {
  INFO(what << ": box (" << box.top << ", " << box.left << ") " << box.height << "x" << box.width << ", window ("
            << w.top << ", " << w.left << ") " << w.pixels.height << "x" << w.pixels.width);
  REQUIRE(w.full_height == full.height);
  REQUIRE(w.full_width == full.width);
  REQUIRE(w.top <= box.top);
  REQUIRE(w.left <= box.left);
  REQUIRE(w.top + w.pixels.height >= box.top + box.height);
  REQUIRE(w.left + w.pixels.width >= box.left + box.width);
  int bad = 0;
  for (int y = box.top; y < box.top + box.height; ++y)
    bad += std::memcmp(w.pixels.at(y - w.top, box.left - w.left), full.at(y, box.left), size_t(box.width) * 3) != 0;
  CHECK_MESSAGE(bad == 0, bad << " rows of the box differ from the full decode");
}

}  // namespace rtune::test
