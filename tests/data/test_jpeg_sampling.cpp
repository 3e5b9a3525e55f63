// data_jpeg_sampling: the partial (crop-box) JPEG decode against the full decode for every chroma
// sampling libjpeg can write, not only the three Pillow writes (tests/data/test_decode.cpp): the
// files are encoded here with the libjpeg API (4:4:4, 4:2:2, 4:4:0, 4:2:0, 4:1:1, 4:1:0, and 2x1 / 1x2
// chroma, odd sizes, restart intervals), then every column, every row and random boxes are decoded
// partially and compared byte for byte with the same pixels of the full decode. Two such files
// (4:1:0, 3x1; TurboJPEG 2.x cannot decode them, libjpeg can) are also held to Pillow's decode.
#include <doctest/doctest.h>

#include <cstring>
#include <fmt/format.h>

#include "io/image/decode.h"
#include "io/image/file_read.h"
#include "io/transforms/random.h"
#include "engine/rng.h"
#include "tests/data/image_test_util.h"
#include "tests/data/jpeg_test_files.h"

using namespace rtune;
using namespace rtune::io;

namespace {

struct Sampling {
  int h, v;  // luma sampling factors (chroma 1x1)
  const char* name;
};

Image picture(int h, int w, uint64_t seed) { return test::jpeg_test_picture(h, w, seed); }

std::vector<std::byte> encode(const Image& img, Sampling s, int restart_rows) {
  return test::encode_jpeg(img, {.h_samp = s.h, .v_samp = s.v, .restart_rows = restart_rows});
}

}  // namespace

TEST_CASE("partial JPEG decode equals the full decode for every chroma sampling libjpeg writes") {
  const Sampling samplings[] = {{1, 1, "4:4:4"}, {2, 1, "4:2:2"}, {1, 2, "4:4:0"}, {2, 2, "4:2:0"},
                                {4, 1, "4:1:1"}, {4, 2, "4:1:0"}, {3, 1, "3x1"},   {1, 3, "1x3"}};
  const std::pair<int, int> sizes[] = {{53, 91}, {40, 130}, {1, 70}, {77, 33}};
  int boxes_checked = 0;
  for (Sampling s : samplings)
    for (auto [h, w] : sizes)
      for (int restart : {0, 1}) {
        const std::string what = fmt::format("{} {}x{} restart {}", s.name, h, w, restart);
        INFO(what);
        Image src = picture(h, w, uint64_t(h * 1000 + w));
        std::vector<std::byte> jpg = encode(src, s, restart);
        Image full = decode_jpeg(jpg, what);
        REQUIRE(full.height == h);
        REQUIRE(full.width == w);
        std::vector<CropBox> boxes;
        for (int x = 0; x < w; ++x) boxes.push_back({(x * 7) % h, x, std::max(1, h - (x * 7) % h - x % 5), 1});
        for (int y = 0; y < h; ++y) boxes.push_back({y, (y * 5) % w, 1, std::max(1, w - (y * 5) % w - y % 3)});
        Rng r(uint64_t(s.h * 10 + s.v));
        for (int i = 0; i < 60; ++i) boxes.push_back(random_resized_crop_params(h, w, r, {0.01, 1.0}));
        ImageWindow win;
        for (const CropBox& box : boxes) {
          REQUIRE(decode_jpeg_region(jpg, what, [&](int, int) { return std::optional<CropBox>(box); }, win));
          test::check_window(win, full, box, what);
          ++boxes_checked;
        }
      }
  CHECK(boxes_checked > 10000);
}

TEST_CASE("samplings TurboJPEG 2.x does not know (4:1:0, 3x1) decode whole and probe like the others") {
  Image src = picture(30, 50, 3);
  for (Sampling s : {Sampling{4, 2, "4:1:0"}, Sampling{3, 1, "3x1"}, Sampling{1, 3, "1x3"}}) {
    INFO(std::string(s.name));
    std::vector<std::byte> jpg = encode(src, s, 0);
    ImageInfo info = probe_image(jpg, s.name);
    CHECK(info.format == ImageFormat::jpeg);
    CHECK(info.height == 30);
    CHECK(info.width == 50);
    Image full = decode_image(std::span<const std::byte>(jpg), s.name);
    REQUIRE(full.height == 30);
    REQUIRE(full.width == 50);
    // Lossy, and the blue channel's sharp wraps lose detail to the coarse chroma, but the same picture:
    // a wrong plane order or a garbled decode is off by ~80 on average.
    double sum = 0;
    for (size_t i = 0; i < src.pixels.size(); ++i) sum += std::abs(int(full.pixels[i]) - int(src.pixels[i]));
    CHECK(sum / double(src.pixels.size()) < 20);
  }
}

TEST_CASE("4:1:0 and 3x1 files decode as Pillow decodes them, whole and by crop box") {
  SafetensorsFile refs = SafetensorsFile::open(test::fixture("data/region/pil_decoded.safetensors"));
  for (const char* f : {"s410_53x91.jpg", "s31_53x91.jpg"}) {
    const std::string path = test::fixture(std::string("data/region/") + f);
    Image want = test::ref_image(refs, f);
    CHECK_IMAGE_NEAR(decode_image(path), want, 0, f);
    std::vector<std::byte> bytes;
    read_file(path, bytes);
    Rng r(11);
    ImageWindow win;
    for (int i = 0; i < 50; ++i) {
      CropBox box = random_resized_crop_params(want.height, want.width, r, {0.02, 1.0});
      REQUIRE(decode_jpeg_region(bytes, f, [&](int, int) { return std::optional<CropBox>(box); }, win));
      int bad = 0;
      for (int y = box.top; y < box.top + box.height; ++y)
        bad += std::memcmp(win.pixels.at(y - win.top, box.left - win.left), want.at(y, box.left), size_t(box.width) * 3) != 0;
      CHECK_MESSAGE(bad == 0, f << ": " << bad << " rows of the box differ from Pillow");
    }
  }
}
