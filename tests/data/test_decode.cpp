// data_decode: decoding equals PIL's Image.open(f).convert("RGB") (tests/fixtures/image_transforms_ref
// from torchvision's fixture script, tests/fixtures/data/image_refs from tests/gen/make_image_fixtures.py),
// DCT-scaled JPEG equals PIL's draft mode, a partial (crop box) JPEG decode equals the full decode in
// its box, and every kind of bad file is an rtune::Error naming it.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

#include "engine/error.h"
#include "io/image/decode.h"
#include "io/image/file_read.h"
#include "io/transforms/random.h"
#include "tests/data/image_test_util.h"
#include "tests/data/tree_util.h"

using namespace rtune;
using namespace rtune::io;
using rtune::test::fixture;

namespace {

std::vector<std::byte> slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::byte> b(c.size());
  if (!c.empty()) std::memcpy(b.data(), c.data(), c.size());  // memcpy from an empty vector: null pointer (UBSan)
  return b;
}

// Little-endian TIFF header fields, for tests that patch a fixture's first IFD.
uint32_t le16_of(const std::vector<std::byte>& b, size_t o) { return uint32_t(b[o]) | uint32_t(b[o + 1]) << 8; }
// The offset of the first IFD (entries: tag, type, count, value, 12 bytes each after a 2-byte count).
size_t first_ifd(const std::vector<std::byte>& b) { return le16_of(b, 4) | le16_of(b, 6) << 16; }

// Runs `fn`, requires an rtune::Error whose message contains every one of `parts`.
template <class Fn>
void check_error(Fn fn, std::initializer_list<std::string_view> parts) {
  try {
    fn();
    FAIL("expected rtune::Error");
  } catch (const Error& e) {
    std::string msg = e.what();
    INFO("message: " << msg);
    for (std::string_view p : parts) CHECK(msg.find(p) != std::string::npos);
  }
}

// Each fixture of tests/fixtures/data/<dir>/ decodes to Pillow's pixels (held in `refs` under its
// name) exactly, through decode_image and decode_image_into, and probes as `format` at its size.
void check_fixture_set(const char* dir, const char* refs_file, std::initializer_list<const char*> names,
                       ImageFormat format) {
  auto refs = SafetensorsFile::open(fixture(std::string("data/") + refs_file));
  for (const char* name : names) {
    CAPTURE(name);
    std::string path = fixture(std::string("data/") + dir + "/" + name);
    Image got = decode_image(path);
    CHECK_IMAGE_NEAR(got, test::ref_image(refs, name), 0, name);
    auto bytes = slurp(path);
    ImageInfo info = probe_image(bytes, name);
    CHECK(info.format == format);
    CHECK(info.height == got.height);
    CHECK(info.width == got.width);
    Image into;
    decode_image_into(bytes, name, {}, into);
    CHECK(into.pixels == got.pixels);
  }
}

}  // namespace

TEST_CASE("PNG decode is exact against torchvision's fixture image") {
  auto refs = SafetensorsFile::open(fixture("image_transforms_ref.safetensors"));
  Image got = decode_image(fixture("gradient_300x200.png"));
  CHECK_IMAGE_NEAR(got, test::ref_image(refs, "png_decoded_hwc_u8"), 0, "png");
}

TEST_CASE("JPEG decode vs PIL's libjpeg decode of the fixture") {
  // Measured: max |diff| 0, mean 0 (TurboJPEG's defaults are PIL's: islow IDCT, fancy upsampling).
  auto refs = SafetensorsFile::open(fixture("image_transforms_ref.safetensors"));
  Image got = decode_image(fixture("gradient_300x200_q90.jpg"));
  auto d = CHECK_IMAGE_NEAR(got, test::ref_image(refs, "jpg_decoded_by_pil_hwc_u8"), 0, "jpeg");
  MESSAGE("JPEG vs PIL: max |diff| " << d.max_abs << ", mean " << d.mean_abs);
}

TEST_CASE("every mode and format converts to RGB as PIL's convert('RGB')") {
  auto refs = SafetensorsFile::open(fixture("data/image_refs.safetensors"));
  for (const char* name : {"rgb.png", "rgba.png", "gray.png", "la.png", "palette.png", "palette_trns.png", "rgb.bmp",
                           "gray.bmp", "palette.gif", "rgb.tga", "rgba.tga", "rgb420.jpg", "rgb444.jpg", "gray.jpg",
                           "cmyk.jpg", "progressive.jpg", "smooth.jpg"}) {
    CAPTURE(name);
    std::string path = fixture(std::string("data/decode/") + name);
    Image got = decode_image(path);
    CHECK_IMAGE_NEAR(got, test::ref_image(refs, std::string("decode.") + name), 0, name);
    // Decoding from memory gives the same pixels.
    auto bytes = slurp(path);
    Image mem = decode_image(std::span<const std::byte>(bytes), name);
    CHECK(mem.pixels == got.pixels);
  }
}

TEST_CASE("WebP decodes as Pillow: first frame, alpha dropped, lossy and lossless") {
  // Measured with Debian's libwebp 1.2.4 against Pillow 13's 1.6.0 (see the fixture's metadata): 0.
  check_fixture_set("webp", "webp_refs.safetensors",
                    {"rgb_lossy.webp", "rgb_lossless.webp", "rgba_lossy.webp", "rgba_lossless.webp", "gray_lossy.webp",
                     "smooth_lossy.webp", "anim.webp"},
                    ImageFormat::webp);
  auto p = [](const char* n) { return fixture(std::string("data/webp/") + n); };
  check_error([&] { decode_image(p("truncated.webp")); }, {"truncated.webp", "truncated"});
  check_error([&] { decode_image(p("corrupt.webp")); }, {"corrupt.webp", "corrupt"});
  // A lossless header claiming 16384 x 16384 pixels: refused before libwebp allocates its canvas.
  auto bomb = slurp(p("rgb_lossless.webp"));
  REQUIRE(std::memcmp(bomb.data() + 12, "VP8L", 4) == 0);
  // VP8L: signature 0x2f at 20, then 14 bits width - 1 and 14 bits height - 1 (little endian).
  uint32_t bits = 0x3FFFu | (0x3FFFu << 14) | (uint32_t(bomb[24]) & 0xF0u) << 24;
  for (int i = 0; i < 4; ++i) bomb[21 + i] = std::byte(bits >> (8 * i));
  check_error([&] { decode_image(std::span<const std::byte>(bomb), "bomb.webp"); }, {"bomb.webp", "decompression-bomb"});
}

TEST_CASE("TIFF decodes as Pillow: first page; strips, tiles, planes; raw, LZW, deflate, PackBits, JPEG, G4") {
  check_fixture_set("tiff", "tiff_refs.safetensors",
                    {"rgb_raw.tif", "rgb_lzw.tif", "rgb_deflate.tif", "rgb_packbits.tif", "rgb_jpeg.tif", "ycbcr_jpeg.tif",
                     "rgba_lzw.tif", "gray.tif", "la.tif", "palette.tif", "bilevel.tif", "bilevel_g4.tif", "pages.tif",
                     "tiled.tif", "planar.tif"},
                    ImageFormat::tiff);
  auto p = [](const char* n) { return fixture(std::string("data/tiff/") + n); };
  check_error([&] { decode_image(p("truncated.tif")); }, {"truncated.tif", "TIFF"});
  check_error([&] { decode_image(p("gray16.tif")); }, {"gray16.tif", "unsupported TIFF", "16 bit(s) per sample"});
  // A header claiming 60000 x 60000 pixels: refused before any strip is read.
  auto bomb = slurp(p("rgb_raw.tif"));
  REQUIRE((uint8_t(bomb[0]) == 'I'));
  for (size_t e = 0, n = le16_of(bomb, first_ifd(bomb)); e < n; ++e) {
    const size_t entry = first_ifd(bomb) + 2 + 12 * e;
    const uint32_t tag = le16_of(bomb, entry), type = le16_of(bomb, entry + 2);
    if ((tag == 256 || tag == 257) && (type == 3 || type == 4)) {  // ImageWidth / ImageLength, SHORT or LONG
      bomb[entry + 8] = std::byte(0x60), bomb[entry + 9] = std::byte(0xEA);  // 60000
      if (type == 4) bomb[entry + 10] = bomb[entry + 11] = std::byte(0);
    }
  }
  check_error([&] { decode_image(std::span<const std::byte>(bomb), "bomb.tif"); }, {"bomb.tif", "decompression-bomb"});
  // A strip claiming ~2 GiB of compressed bytes: an error, not a 2 GiB allocation.
  auto big = slurp(p("rgb_lzw.tif"));
  bool patched = false;
  for (size_t e = 0, n = le16_of(big, first_ifd(big)); e < n; ++e) {
    const size_t entry = first_ifd(big) + 2 + 12 * e;
    if (le16_of(big, entry) == 279 && le16_of(big, entry + 2) == 4 && le16_of(big, entry + 4) == 1) {  // StripByteCounts, one LONG
      big[entry + 8] = big[entry + 9] = big[entry + 10] = std::byte(0xF0), big[entry + 11] = std::byte(0x7F);
      patched = true;
    }
  }
  REQUIRE(patched);
  check_error([&] { decode_image(std::span<const std::byte>(big), "big_strip.tif"); }, {"big_strip.tif", "TIFF"});
  // 10000 x 10000 pixels of 8 samples each (under the pixel limit, over 4 bytes per pixel): refused
  // before any buffer is sized, instead of an 800 MB allocation (or, with 65535 samples, a throw of
  // std::bad_alloc that no caller expects).
  auto wide = slurp(p("rgb_raw.tif"));
  auto put16 = [&](size_t o, uint32_t v) { wide[o] = std::byte(v & 0xFF), wide[o + 1] = std::byte(v >> 8); };
  for (size_t e = 0, n = le16_of(wide, first_ifd(wide)); e < n; ++e) {
    const size_t entry = first_ifd(wide) + 2 + 12 * e;
    const uint32_t tag = le16_of(wide, entry);
    if (tag == 256 || tag == 257) put16(entry + 8, 10000), put16(entry + 10, 0);               // LONG width, height
    if (tag == 277) put16(entry + 8, 8);                                                        // SamplesPerPixel
    if (tag == 258) put16(entry + 4, 1), put16(entry + 6, 0), put16(entry + 8, 8), put16(entry + 10, 0);  // one BitsPerSample
  }
  check_error([&] { decode_image(std::span<const std::byte>(wide), "wide.tif"); }, {"wide.tif", "over the limit"});
}

// Issue 21: stb_image looked indices past a short palette up in uninitialised memory (valgrind; other
// pixels each run). Pillow pads a PNG's palette with black, and so does rtune; Pillow's BMP answers for
// them are quirky (see tests/gen/make_palette_fixtures.py), so such a BMP is refused as corrupt.
TEST_CASE("palette indices past the palette: PNG black as Pillow, BMP refused") {
  check_fixture_set("palette", "palette_refs.safetensors",
                    {"short_8bit.png", "short_4bit.png", "short_1bit.png", "short_trns.png"}, ImageFormat::png);
  check_fixture_set("palette", "palette_refs.safetensors", {"in_range_8bit.bmp"}, ImageFormat::bmp);
  auto p = [](const char* n) { return fixture(std::string("data/palette/") + n); };
  check_error([&] { decode_image(p("short_8bit.bmp")); }, {"short_8bit.bmp", "corrupt BMP", "palette index 200", "2-entry"});
  check_error([&] { decode_image(p("short_4bit.bmp")); }, {"short_4bit.bmp", "palette index 15", "3-entry"});
  check_error([&] { decode_image(p("short_1bit.bmp")); }, {"short_1bit.bmp", "palette index 1", "1-entry"});
  // The colour count says 3 but the gap before the pixels holds 2 entries: stb reads 2.
  auto gap_short = slurp(p("in_range_8bit.bmp"));
  gap_short[10] = std::byte(uint8_t(gap_short[10]) - 4);  // pixel data offset 4 bytes earlier
  check_error([&] { decode_image(std::span<const std::byte>(gap_short), "gap.bmp"); }, {"gap.bmp", "2-entry"});
}

// Issue 21: Pillow's CMYK 4:2:2 and 4:2:0 (C at 2x1 / 2x2, M, Y, K at 1x1) were refused as corrupt,
// since TurboJPEG 2.x cannot name that sampling. Exact, as the 4:4:4 file (same IDCT and upsampling).
TEST_CASE("CMYK JPEGs decode as Pillow at each subsampling Pillow writes") {
  check_fixture_set("cmyk", "cmyk_refs.safetensors", {"cmyk444.jpg", "cmyk422.jpg", "cmyk420.jpg"}, ImageFormat::jpeg);
  auto refs = SafetensorsFile::open(fixture("data/cmyk_refs.safetensors"));
  const std::string path = fixture("data/cmyk/cmyk420.jpg");
  // No DCT scaling for these: a hint is a lower bound, so the full-size decode serves it.
  CHECK_IMAGE_NEAR(decode_image(path, DecodeHint{.min_short_side = 2}), test::ref_image(refs, "cmyk420.jpg"), 0, "hint");
  auto cut = slurp(path);
  cut.resize(cut.size() * 2 / 3);
  check_error([&] { decode_image(std::span<const std::byte>(cut), "cut.jpg"); }, {"cut.jpg", "truncated"});
}

TEST_CASE("sniff_format recognises magic bytes") {
  CHECK(sniff_format(slurp(fixture("data/decode/rgb.png"))) == ImageFormat::png);
  CHECK(sniff_format(slurp(fixture("data/decode/rgb420.jpg"))) == ImageFormat::jpeg);
  CHECK(sniff_format(slurp(fixture("data/decode/rgb.bmp"))) == ImageFormat::bmp);
  CHECK(sniff_format(slurp(fixture("data/decode/palette.gif"))) == ImageFormat::gif);
  CHECK(sniff_format(slurp(fixture("data/decode/rgb.tga"))) == ImageFormat::tga);
  CHECK(sniff_format(slurp(fixture("data/decode/notes.txt"))) == ImageFormat::unknown);
}

TEST_CASE("DCT-scaled JPEG decode equals PIL's draft mode, never below the hint") {
  auto refs = SafetensorsFile::open(fixture("data/image_refs.safetensors"));
  std::string path = fixture("data/decode/smooth.jpg");  // 48 wide, 64 high
  for (int denom : {2, 4, 8}) {
    CAPTURE(denom);
    // Ask for exactly the scaled size: the decoder must pick 1/denom.
    Image got = decode_image(path, DecodeHint{.min_short_side = 48 / denom});
    Image want = test::ref_image(refs, fmt::format("decode_scaled.smooth.jpg.{}", denom));
    CHECK_IMAGE_NEAR(got, want, 0, "scaled");
  }
  // One pixel more than 1/4 gives must fall back to 1/2, and a hint above the image gives full size.
  CHECK(decode_image(path, DecodeHint{.min_short_side = 13}).width == 24);
  CHECK(decode_image(path, DecodeHint{.min_height = 17}).height == 32);
  CHECK(decode_image(path, DecodeHint{.min_short_side = 500}).width == 48);
  // Hints do not touch non-JPEG formats.
  CHECK(decode_image(fixture("data/decode/rgb.png"), DecodeHint{.min_short_side = 2}).width == 23);
}

TEST_CASE("bad files are errors naming the file and the reason") {
  auto p = [](const char* n) { return fixture(std::string("data/decode/") + n); };
  check_error([&] { decode_image(p("empty.jpg")); }, {"empty.jpg", "empty"});
  check_error([&] { decode_image(p("notes.txt")); }, {"notes.txt", "not a supported image"});
  check_error([&] { decode_image(p("truncated.jpg")); }, {"truncated.jpg", "truncated"});
  check_error([&] { decode_image(p("truncated.png")); }, {"truncated.png", "truncated PNG"});
  check_error([&] { decode_image(p("corrupt.png")); }, {"corrupt.png", "corrupt"});
  check_error([&] { decode_image(p("truncated.bmp")); }, {"truncated.bmp", "truncated"});
  check_error([&] { decode_image(p("garbage.jpg")); }, {"garbage.jpg", "corrupt"});
  check_error([&] { decode_image(p("does_not_exist.png")); }, {"does_not_exist.png", "no such file"});
  check_error([&] { decode_image(fixture("data/decode")); }, {"decode", "directory"});
  // Decompression bombs: a few header bytes claiming billions of pixels are refused before any
  // allocation (PIL's limit), by the full and the partial JPEG decoder and by stb_image.
  auto jpeg_bomb = slurp(p("rgb420.jpg"));
  for (size_t i = 2; i + 8 < jpeg_bomb.size(); ++i)
    if (jpeg_bomb[i] == std::byte{0xFF} && jpeg_bomb[i + 1] == std::byte{0xC0}) {  // SOF0: P, Y, X follow
      for (size_t k : {i + 5, i + 6, i + 7, i + 8}) jpeg_bomb[k] = std::byte{0xEA};  // 60138 x 60138
      break;
    }
  check_error([&] { decode_image(std::span<const std::byte>(jpeg_bomb), "bomb.jpg"); },
              {"bomb.jpg", "60138x60138", "decompression-bomb"});
  ImageWindow w;
  check_error([&] { decode_jpeg_region(jpeg_bomb, "bomb.jpg", [](int, int) { return std::optional<CropBox>(CropBox{0, 0, 1, 1}); }, w); },
              {"bomb.jpg", "decompression-bomb"});
  auto png_bomb = slurp(p("rgb.png"));
  for (size_t k : {16, 20}) {  // IHDR width and height, big-endian: 15000 x 15000 (stb's own limit is higher)
    png_bomb[k] = png_bomb[k + 1] = std::byte{0};
    png_bomb[k + 2] = std::byte{0x3A};
    png_bomb[k + 3] = std::byte{0x98};
  }
  check_error([&] { decode_image(std::span<const std::byte>(png_bomb), "bomb.png"); }, {"bomb.png", "decompression-bomb"});
  std::vector<std::byte> none;
  check_error([&] { decode_image(std::span<const std::byte>(none), "mem.jpg"); }, {"mem.jpg", "empty"});
}

TEST_CASE("mutated and cut files of every format decode or fail with an rtune::Error, never crash") {
  // Seeded byte flips and truncations (under ASan in CI): each decoder must reject or survive them.
  Rng rng(20261124);
  int decoded = 0, refused = 0;
  for (const char* name : {"decode/rgb420.jpg", "decode/progressive.jpg", "decode/rgba.png", "decode/palette.gif",
                           "decode/rgb.bmp", "decode/rgba.tga", "webp/rgb_lossy.webp", "webp/rgba_lossless.webp",
                           "webp/anim.webp", "tiff/rgb_lzw.tif", "tiff/tiled.tif", "tiff/ycbcr_jpeg.tif",
                           "tiff/bilevel_g4.tif", "tiff/palette.tif"}) {
    CAPTURE(name);
    const auto original = slurp(fixture(std::string("data/") + name));
    REQUIRE(!original.empty());
    for (int trial = 0; trial < 150; ++trial) {
      auto bytes = original;
      if (trial % 3 == 0) bytes.resize(size_t(rng.randint(1, int64_t(bytes.size()))));
      for (int flips = int(rng.randint(1, 5)); flips > 0; --flips)
        bytes[size_t(rng.randint(0, int64_t(bytes.size())))] = std::byte(rng.randint(0, 256));
      try {
        Image img = decode_image(std::span<const std::byte>(bytes), name);
        CHECK(img.pixels.size() == size_t(img.height) * size_t(img.width) * 3);
        ++decoded;
      } catch (const Error&) {
        ++refused;
      }
    }
  }
  MESSAGE("mutated files: " << decoded << " decoded, " << refused << " refused");
  CHECK(refused > 0);
}

TEST_CASE("read_file reads whole files and refuses what is not one; advise_will_read never blocks or throws") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / fmt::format("rtune_read_file_{}", ::getpid());
  fs::create_directories(dir);
  std::vector<std::byte> bytes(3, std::byte{7});  // capacity reused, size set to the file's
  read_file(fixture("data/decode/rgb.png"), bytes);
  CHECK(bytes == slurp(fixture("data/decode/rgb.png")));
  { std::ofstream(dir / "empty.jpg"); }
  read_file(dir / "empty.jpg", bytes);
  CHECK(bytes.empty());
  // A FIFO would block a reader forever (no writer): refused from its type, and the read-ahead hint
  // opens it without blocking.
  REQUIRE(::mkfifo((dir / "pipe.jpg").c_str(), 0600) == 0);
  check_error([&] { read_file(dir / "pipe.jpg", bytes); }, {"pipe.jpg", "not a regular file"});
  advise_will_read(dir / "pipe.jpg");
  check_error([&] { read_file(dir, bytes); }, {"directory"});
  check_error([&] { read_file(dir / "missing.jpg", bytes); }, {"missing.jpg", "no such file"});
  check_error([&] { read_file(dir / "empty.jpg" / "below", bytes); }, {"below", "no such file"});
  advise_will_read(dir / "missing.jpg");
  advise_will_read(fixture("data/decode/rgb.png"));
  fs::remove_all(dir);
}

namespace {

void put_le(std::vector<std::byte>& b, size_t at, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) b[at + size_t(i)] = std::byte((v >> (8 * i)) & 0xFF);
}

// An uncompressed 8-bit RGB TIFF with its pixels first and its directory at the end of the file
// (where libtiff itself writes it), pixel (y, x) = (x, y, x + y).
std::vector<std::byte> tiff_with_directory_last(int h, int w) {
  const size_t data = size_t(h) * size_t(w) * 3, bps = 8 + data, ifd = bps + 6;
  const uint16_t tags[][3] = {{256, 3, uint16_t(w)}, {257, 3, uint16_t(h)}, {258, 3, 0}, {259, 3, 1}, {262, 3, 2},
                              {273, 4, 8},           {277, 3, 3},           {278, 3, uint16_t(h)}, {279, 4, 0},
                              {284, 3, 1}};
  std::vector<std::byte> b(ifd + 2 + std::size(tags) * 12 + 4);
  b[0] = b[1] = std::byte{'I'};
  put_le(b, 2, 42, 2);
  put_le(b, 4, uint32_t(ifd), 4);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      size_t o = 8 + (size_t(y) * size_t(w) + size_t(x)) * 3;
      b[o] = std::byte(x), b[o + 1] = std::byte(y), b[o + 2] = std::byte(x + y);
    }
  for (int c = 0; c < 3; ++c) put_le(b, bps + size_t(c) * 2, 8, 2);  // BitsPerSample 8, 8, 8
  put_le(b, ifd, uint32_t(std::size(tags)), 2);
  for (size_t i = 0; i < std::size(tags); ++i) {
    const size_t e = ifd + 2 + i * 12;
    put_le(b, e, tags[i][0], 2);
    put_le(b, e + 2, tags[i][1], 2);
    put_le(b, e + 4, tags[i][0] == 258 ? 3 : 1, 4);
    const uint32_t value = tags[i][0] == 258 ? uint32_t(bps) : tags[i][0] == 279 ? uint32_t(data) : tags[i][2];
    put_le(b, e + 8, value, tags[i][1] == 3 && tags[i][0] != 258 ? 2 : 4);
  }
  return b;  // next-IFD offset 0: the last 4 bytes are already zero
}

}  // namespace

TEST_CASE("probing a file reads its start; a header past it (TIFF directory last, big metadata) is still found") {
  test::TempTree dir("probe");
  // read_file_start: at most the bytes asked for, and the whole file's size.
  const auto png = slurp(fixture("data/decode/rgb.png"));
  std::vector<std::byte> head;
  CHECK(read_file_start(fixture("data/decode/rgb.png"), 10, head) == png.size());
  CHECK(head == std::vector<std::byte>(png.begin(), png.begin() + 10));
  CHECK(read_file_start(fixture("data/decode/rgb.png"), png.size() + 5, head) == png.size());
  CHECK(head == png);

  const auto tiff = tiff_with_directory_last(90, 120);  // 32,400 bytes of pixels before the directory
  REQUIRE(tiff.size() > (size_t(16) << 10) + 16000);
  ImageInfo info = probe_image(dir.write("last.tif", tiff));
  CHECK(info.format == ImageFormat::tiff);
  CHECK(info.height == 90);
  CHECK(info.width == 120);
  Image img = decode_image(dir.root / "last.tif");
  REQUIRE(img.height == 90);
  CHECK(img.at(89, 119)[0] == 119);
  CHECK(img.at(89, 119)[2] == uint8_t(89 + 119));

  // A JPEG whose frame header follows 40 KB of comment (as after a large EXIF or ICC segment).
  auto jpg = slurp(fixture("data/decode/rgb420.jpg"));
  const ImageInfo want = probe_image(jpg, "rgb420.jpg");
  std::vector<std::byte> comment(4 + 40000, std::byte{'c'});
  comment[0] = std::byte{0xFF}, comment[1] = std::byte{0xFE};
  comment[2] = std::byte((40002 >> 8) & 0xFF), comment[3] = std::byte(40002 & 0xFF);
  jpg.insert(jpg.begin() + 2, comment.begin(), comment.end());
  info = probe_image(dir.write("big_comment.jpg", jpg));
  CHECK(info.format == ImageFormat::jpeg);
  CHECK(info.height == want.height);
  CHECK(info.width == want.width);
  // Cut inside the comment: no frame header anywhere, an error from the whole file.
  jpg.resize(30000);
  check_error([&] { probe_image(dir.write("cut_comment.jpg", jpg)); }, {"cut_comment.jpg", "corrupt JPEG header"});
}

TEST_CASE("partial JPEG decode equals the full decode inside the box, for every subsampling and edge") {
  const char* files[] = {"s420_131x97.jpg", "s422_75x203.jpg", "s444_64x80.jpg", "s420_restart_120x150.jpg",
                         "gray_99x61.jpg", "s420_1x40.jpg", "s420_20x34.jpg"};
  for (const char* f : files) {
    auto bytes = slurp(fixture(std::string("data/region/") + f));
    Image full = decode_jpeg(bytes, f);
    const int H = full.height, W = full.width;
    std::vector<CropBox> boxes;
    for (int x = 0; x < W; ++x) boxes.push_back({(x * 7) % H, x, std::max(1, H - (x * 7) % H - x % 5), 1});  // each column
    for (int y = 0; y < H; ++y) boxes.push_back({y, (y * 5) % W, 1, std::max(1, W - (y * 5) % W - y % 3)});  // each row
    Rng r(99);
    for (int i = 0; i < 200; ++i) boxes.push_back(random_resized_crop_params(H, W, r, {0.01, 1.0}));
    boxes.push_back({0, 0, H, W});
    boxes.push_back({H - 1, W - 1, 1, 1});
    ImageWindow w;
    for (const CropBox& box : boxes) {
      bool took = decode_jpeg_region(bytes, f, [&](int h, int wd) {
        CHECK(h == H);
        CHECK(wd == W);
        return std::optional<CropBox>(box);
      }, w);
      REQUIRE(took);
      test::check_window(w, full, box, f);
    }
  }
}

TEST_CASE("partial JPEG decode declines what a full decode must handle, and names errors") {
  auto take_all = [](int h, int w) { return std::optional<CropBox>(CropBox{0, 0, h, w}); };
  auto take_corner = [](int, int) { return std::optional<CropBox>(CropBox{0, 0, 1, 1}); };
  ImageWindow w;
  for (const char* f : {"data/region/progressive_60x70.jpg", "data/decode/cmyk.jpg", "data/decode/rgb.png",
                        "data/decode/truncated.jpg", "data/decode/empty.jpg"}) {
    INFO(f);
    auto bytes = slurp(fixture(f));
    CHECK_FALSE(decode_jpeg_region(bytes, f, take_corner, w));
  }
  // A progressive file decodes whole (no row or column skipped), equal to the full decode.
  auto progressive = slurp(fixture("data/region/progressive_60x70.jpg"));
  REQUIRE(decode_jpeg_region(progressive, "p.jpg", take_all, w));
  CHECK(w.pixels.pixels == decode_jpeg(progressive, "p.jpg").pixels);
  auto bytes = slurp(fixture("data/region/s420_131x97.jpg"));
  CHECK_FALSE(decode_jpeg_region(bytes, "x.jpg", [](int, int) { return std::optional<CropBox>(); }, w));
  check_error([&] { decode_jpeg_region(bytes, "x.jpg", [](int h, int w) { return std::optional<CropBox>(CropBox{1, 0, h, w}); }, w); },
              {"x.jpg", "not inside"});
  // Garbage after a JPEG signature, with an end-of-image marker so that it is attempted.
  auto garbage = slurp(fixture("data/decode/garbage.jpg"));
  garbage.push_back(std::byte{0xFF});
  garbage.push_back(std::byte{0xD9});
  check_error([&] { decode_jpeg_region(garbage, "garbage.jpg", take_all, w); }, {"garbage.jpg", "corrupt JPEG"});
}
