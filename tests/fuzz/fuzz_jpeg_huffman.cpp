// Differential fuzzing of rtune's Huffman decoder (io/image/jpeg_huffman.cpp) against libjpeg-turbo's
// own, through the same libjpeg calls (tests/data/jpeg_two_decoders.h): on any input, valid or not,
// both must fail alike or give the same pixels and the same warnings (JWRN_HIT_MARKER where libjpeg
// hits a marker early, ...). Some inputs also skip rows first (the decoder then runs without blocks).
#include <cstdio>
#include <vector>

#include "tests/data/jpeg_two_decoders.h"
#include "tests/fuzz/fuzz_util.h"

namespace {
void print_warnings(const char* who, const std::vector<int>& w) {
  std::fprintf(stderr, "%s warnings:", who);
  for (int c : w) std::fprintf(stderr, " %d", c);
  std::fprintf(stderr, "\n");
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rtune;
  const auto bytes = fuzz::as_bytes(data, size);
  constexpr int64_t kMaxPixels = int64_t(1) << 20;  // as fuzz_image.h: large images cost seconds each
  const int skip_rows = size % 3 == 0 ? int(size % 37) : 0;
  test::DecodedJpeg theirs, ours;
  test::decode_with_libjpeg(bytes, false, skip_rows, theirs, kMaxPixels);
  if (theirs.too_large) return 0;
  test::decode_with_libjpeg(bytes, true, skip_rows, ours, kMaxPixels);
  const auto w_theirs = test::comparable_warnings(theirs), w_ours = test::comparable_warnings(ours);
  if (ours.failed != theirs.failed || ours.pixels != theirs.pixels || w_ours != w_theirs) {
    std::fprintf(stderr, "rtune decoder used: %d; failed: libjpeg %d, rtune %d; pixels %s\n", int(ours.rtune_decoder),
                 int(theirs.failed), int(ours.failed), ours.pixels == theirs.pixels ? "equal" : "differ");
    print_warnings("libjpeg", w_theirs);
    print_warnings("rtune", w_ours);
    fuzz::require(false, "rtune's Huffman decoder gives libjpeg-turbo's result");
  }
  return 0;
}
