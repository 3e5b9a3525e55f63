// Fuzzes the crop-box JPEG path (io/image/jpeg_region.cpp): rows above the box skipped, columns beside
// it cropped. The box comes from the input's size. Where the region decode and the full decode both
// succeed, the box's pixels must be the full decode's (decode.h promises bit-identical pixels).
#include <cstring>

#include "engine/rng.h"
#include "tests/fuzz/fuzz_image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rtune;
  const auto in = fuzz::input_of_format(data, size, io::ImageFormat::jpeg);
  if (!in) return 0;
  std::optional<io::CropBox> asked;
  auto want = [&](int h, int w) -> std::optional<io::CropBox> {
    if (int64_t(h) * w > fuzz::kFuzzMaxPixels) return std::nullopt;
    const uint64_t r = Rng::for_key(size, 0).next_u64();  // the box depends on the input only
    io::CropBox b;
    b.top = int(r % uint64_t(h));
    b.left = int((r >> 16) % uint64_t(w));
    b.height = 1 + int((r >> 32) % uint64_t(h - b.top));
    b.width = 1 + int((r >> 48) % uint64_t(w - b.left));
    asked = b;
    return b;
  };
  io::ImageWindow window;
  bool decoded = false;
  fuzz::expect_only_rtune_errors([&] { decoded = io::decode_jpeg_region(in->bytes, "fuzz.jpg", want, window); });
  if (!decoded) return 0;
  fuzz::require(asked.has_value(), "a region decode asked for its box");
  const io::CropBox& b = *asked;
  const io::Image& px = window.pixels;
  fuzz::require(window.top == b.top && px.height == b.height && window.left <= b.left &&
                    window.left + px.width >= b.left + b.width && window.left + px.width <= window.full_width,
                "the window holds the box");
  fuzz::require(px.pixels.size() == size_t(px.height) * size_t(px.width) * 3, "window pixels hold height x width x 3");
  std::optional<io::Image> full;
  fuzz::expect_only_rtune_errors([&] { full = io::decode_jpeg(in->bytes, "fuzz.jpg"); });
  if (!full) return 0;
  fuzz::require(full->height == window.full_height && full->width == window.full_width, "the full size agrees");
  for (int y = 0; y < b.height; ++y)
    fuzz::require(std::memcmp(px.at(y, b.left - window.left), full->at(b.top + y, b.left), size_t(b.width) * 3) == 0,
                  "the box's pixels are the full decode's");
  return 0;
}
