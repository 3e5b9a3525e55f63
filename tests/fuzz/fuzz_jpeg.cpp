// Fuzzes JPEG decoding (io/image/jpeg.cpp): the full-size path (libjpeg with rtune's Huffman decoder
// for baseline scans, TurboJPEG for the rest), decode_image_into, the header probe (fuzz_image.h),
// and a DCT-scaled decode whose hint comes from the input's size.
#include <algorithm>

#include "tests/fuzz/fuzz_image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rtune;
  const auto in = fuzz::input_of_format(data, size, io::ImageFormat::jpeg);
  if (!in) return 0;
  fuzz::decode_all_ways(in->bytes, in->info);
  // A scaled decode never lands below a bound the full-size image meets (decode.h, DecodeHint).
  const io::DecodeHint hint{.min_short_side = int(size % 61), .min_height = int(size % 7 * 5), .min_width = 0};
  fuzz::expect_only_rtune_errors([&] {
    io::Image scaled = io::decode_jpeg(in->bytes, "fuzz.jpg", hint);
    if (!in->info) return;
    fuzz::require(scaled.height <= in->info->height && scaled.width <= in->info->width, "a scaled decode is no larger");
    fuzz::require(scaled.height >= std::min(hint.min_height, in->info->height) &&
                      std::min(scaled.height, scaled.width) >=
                          std::min(hint.min_short_side, std::min(in->info->height, in->info->width)),
                  "a scaled decode meets the hint's bounds");
  });
  return 0;
}
