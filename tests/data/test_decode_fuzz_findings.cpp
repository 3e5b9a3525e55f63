// data_decode_fuzz_findings: what the fuzzers found in the image readers (tests/fuzz/README.md), held
// to PIL's behaviour on the inputs they saved: files cut short are rejected, not filled with whatever
// the heap held; a 16-bit PGM decodes; a JPEG with stray bytes between markers probes as it decodes;
// a JPEG whose decode fails after a warning is rejected, not returned half-written.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "engine/error.h"
#include "io/image/decode.h"

using namespace rtune;
using namespace rtune::io;

namespace {

std::vector<std::byte> regression_input(const std::string& rel) {
  std::ifstream f(std::string(RTUNE_SOURCE_DIR "/tests/fuzz/") + rel, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  REQUIRE(!c.empty());
  return {reinterpret_cast<const std::byte*>(c.data()), reinterpret_cast<const std::byte*>(c.data() + c.size())};
}

std::vector<std::byte> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), reinterpret_cast<const std::byte*>(s.data() + s.size())};
}

}  // namespace

TEST_CASE("PNM and TGA files cut short are rejected as truncated") {
  for (const char* rel : {"stb/regress_truncated_pgm.pgm", "stb/regress_truncated_tga.tga"}) {
    CAPTURE(rel);
    const auto b = regression_input(rel);
    CHECK_THROWS_WITH_AS(decode_image(b, rel), doctest::Contains("truncated"), Error);
    CHECK_THROWS_AS(probe_image(b, rel), Error);
  }
  // One sample short of a 3x2 PPM, and exactly complete.
  const std::string header = "P6\n3 2\n255\n";
  CHECK_THROWS_WITH_AS(decode_image(bytes_of(header + std::string(17, 'x')), "short.ppm"), doctest::Contains("truncated"),
                       Error);
  CHECK(decode_image(bytes_of(header + std::string(18, 'x')), "full.ppm").pixels == std::vector<uint8_t>(18, 'x'));
  // A header number past int (stb's parser would overflow).
  CHECK_THROWS_AS(decode_image(bytes_of("P5\n99999999999 1\n255\n"), "huge.pgm"), Error);
}

TEST_CASE("a 16-bit PGM decodes to gray RGB") {
  // The saved input (it overflowed stb's buffer) is also one sample short.
  CHECK_THROWS_WITH_AS(decode_image(regression_input("stb/regress_pgm16_to_rgb_overflow.pgm"), "pgm16"),
                       doctest::Contains("truncated"), Error);
  const std::string pgm = "P5\n2 1\n65535\n" + std::string("\x12\x34\xab\xcd", 4);
  const Image img = decode_image(bytes_of(pgm), "gray16.pgm");
  REQUIRE((img.height == 1 && img.width == 2));
  for (int x = 0; x < 2; ++x) {
    const uint8_t* p = img.at(0, x);
    CHECK((p[0] == p[1] && p[1] == p[2]));
  }
}

TEST_CASE("JPEG: a header warning is not an error; an error after a warning is") {
  const auto warned = regression_input("jpeg/regress_header_warning_probe.jpg");
  const Image img = decode_image(warned, "warned.jpg");
  const ImageInfo info = probe_image(warned, "warned.jpg");
  CHECK(info.height == img.height);
  CHECK(info.width == img.width);
  CHECK_THROWS_WITH_AS(decode_image(regression_input("jpeg/regress_warning_then_error.jpg"), "bad.jpg"),
                       doctest::Contains("corrupt JPEG"), Error);
}

// stb_image reads a BMP's compression as a signed int and decodes a negative one as uncompressed,
// past the palette check's reach: two decodes of the same file differed (fuzz_stb). Pillow refuses an
// unknown compression; so does rtune, every time. The other saved BMP has an index past its palette.
TEST_CASE("BMP: a negative compression value is refused; an index past the palette is refused") {
  const auto neg = regression_input("stb/regress_bmp_negative_compression.bmp");
  CHECK_THROWS_WITH_AS(decode_image(neg, "neg.bmp"), doctest::Contains("unknown compression"), Error);
  Image reused(3, 5, 0xAB);
  CHECK_THROWS_WITH_AS(decode_image_into(neg, "neg.bmp", {}, reused), doctest::Contains("unknown compression"), Error);
  const auto past = regression_input("stb/regress_bmp_palette_index_past_palette.bmp");
  CHECK_THROWS_WITH_AS(decode_image(past, "past.bmp"), doctest::Contains("corrupt BMP"), Error);
}

// A 158-byte PNG whose IDAT declares 1.7 GB: stb_image reserved 2 GB for it before reading (fuzz_stb:
// seconds under ASan). The decoders refuse it as truncated from the chunk lengths; the probe reads the
// header only, as PIL's Image.open, so a scan keeps it (and the loader skips it, named).
TEST_CASE("PNG: a chunk longer than the file is refused before any allocation") {
  const auto big = regression_input("stb/regress_png_idat_length_past_end.png");
  CHECK(probe_image(big, "big.png").width == 23);
  CHECK_THROWS_WITH_AS(decode_image(big, "big.png"), doctest::Contains("truncated PNG"), Error);
  Image reused(3, 5, 0xAB);
  CHECK_THROWS_WITH_AS(decode_image_into(big, "big.png", {}, reused), doctest::Contains("truncated PNG"), Error);
}
