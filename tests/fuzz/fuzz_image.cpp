// Fuzzes the non-JPEG decoders through decode_image / decode_image_into / probe_image (see
// fuzz_image.h for what must hold). One source, one binary per decoder: RTUNE_FUZZ_FORMATS lists the
// formats a binary decodes (others return at once, so that libFuzzer spends its time on them):
// fuzz_stb (PNG, BMP, GIF, TGA, PNM through stb_image), fuzz_webp (libwebp), fuzz_tiff (libtiff).
#include <algorithm>
#include <initializer_list>

#include "tests/fuzz/fuzz_image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rtune;
  using enum io::ImageFormat;
  const std::initializer_list<io::ImageFormat> formats = {RTUNE_FUZZ_FORMATS};
  const auto bytes = fuzz::as_bytes(data, size);
  if (std::find(formats.begin(), formats.end(), io::sniff_format(bytes)) == formats.end()) return 0;
  const auto info = fuzz::probe(bytes);
  if (fuzz::small_enough(info)) fuzz::decode_all_ways(bytes, info);
  return 0;
}
