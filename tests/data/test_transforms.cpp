// data_transforms: transforms on a noisy 37x53 image against Pillow called as torchvision calls it
// (tests/gen/make_image_fixtures.py: enlarging/shrinking/one-axis resizes, rotations with fill and the
// 90/180/270 fast paths, every colour op on both sides of 1, all pad modes, center crops that pad),
// crop + bilinear resize over 60 boxes (tests/gen/make_resize_cases.py, F.resized_crop on PIL),
// sampling-algorithm properties of the random transforms, seeded reproducibility, and spec parsing.
#include <doctest/doctest.h>

#include <set>

#include "engine/error.h"
#include "io/transforms/color.h"
#include "io/transforms/geometry.h"
#include "io/transforms/pipeline.h"
#include "io/transforms/resize.h"
#include "tests/data/image_test_util.h"

using namespace rtune;
using namespace rtune::io;
using rtune::test::fixture;

namespace {

struct Refs {
  SafetensorsFile f = SafetensorsFile::open(fixture("data/image_refs.safetensors"));
  Image src = test::ref_image(f, "noise");
  Image ref(const std::string& k) const { return test::ref_image(f, "t." + k); }
};

Image noise_image(int h, int w, uint64_t seed) {
  Rng r(seed);
  Image img(h, w);
  for (auto& p : img.pixels) p = uint8_t(r.next_u64() >> 56);
  return img;
}

}  // namespace

TEST_CASE("resize equals PIL on enlarging, shrinking and single-axis cases") {
  Refs r;
  for (auto [h, w] : std::vector<std::pair<int, int>>{{20, 29}, {80, 100}, {37, 20}, {50, 53}, {9, 131}, {1, 1}}) {
    std::string k = fmt::format("resize_{}x{}", h, w);
    CHECK_IMAGE_NEAR(resize(r.src, h, w), r.ref(k), 0, k);
  }
  for (auto [h, w] : std::vector<std::pair<int, int>>{{100, 70}, {15, 22}, {37, 99}}) {
    std::string k = fmt::format("resize_{}x{}_nearest", h, w);
    CHECK_IMAGE_NEAR(resize(r.src, h, w, Interp::nearest), r.ref(k), 0, k);
  }
  CHECK(shorter_side_size(200, 300, 256) == std::pair{256, 384});
  CHECK(shorter_side_size(333, 500, 256) == std::pair{256, 384});  // int(256*500/333) = 384
  CHECK(shorter_side_size(500, 333, 256) == std::pair{384, 256});
  CHECK(shorter_side_size(7, 7, 3) == std::pair{3, 3});
}

TEST_CASE("rotate equals PIL (fill, bilinear, nearest, right-angle fast paths)") {
  Refs r;
  struct Case { double angle; Interp interp; int fill; const char* key; };
  for (Case c : {Case{30, Interp::nearest, 0, "rotate_30_nearest_fill0"}, Case{-45, Interp::bilinear, 0, "rotate_-45_bilinear_fill0"},
                 Case{90, Interp::nearest, 0, "rotate_90_nearest_fill0"}, Case{180, Interp::bilinear, 0, "rotate_180_bilinear_fill0"},
                 Case{12.5, Interp::bilinear, 128, "rotate_12.5_bilinear_fill128"},
                 Case{-100.25, Interp::nearest, 7, "rotate_-100.25_nearest_fill7"},
                 Case{270, Interp::bilinear, 0, "rotate_270_bilinear_fill0"},
                 Case{359.9, Interp::bilinear, 0, "rotate_359.9_bilinear_fill0"}}) {
    uint8_t fv = uint8_t(c.fill);
    CHECK_IMAGE_NEAR(rotate(r.src, c.angle, c.interp, {fv, fv, fv}), r.ref(c.key), 0, c.key);
  }
  Image sq = crop(r.src, 0, 0, 37, 37);
  CHECK_IMAGE_NEAR(rotate(sq, 90), r.ref("square_rotate_90_nearest"), 0, "square 90");
  CHECK_IMAGE_NEAR(rotate(sq, -90, Interp::bilinear), r.ref("square_rotate_-90_bilinear"), 0, "square -90");
  CHECK(rotate(r.src, 0).pixels == r.src.pixels);
  CHECK(rotate(r.src, 720).pixels == r.src.pixels);
}

TEST_CASE("colour ops equal PIL on both sides of 1 and at 0") {
  Refs r;
  for (double f : {0.0, 0.6, 1.7}) CHECK_IMAGE_NEAR(adjust_brightness(r.src, f), r.ref(fmt::format("brightness_{:.1f}", f)), 0, f);
  for (double f : {0.0, 0.35, 1.4})
    CHECK_IMAGE_NEAR(adjust_contrast(r.src, f), r.ref(fmt::format("contrast_{}", f == 0 ? "0.0" : fmt::format("{}", f))), 0, f);
  for (double f : {0.0, 0.3, 2.0}) CHECK_IMAGE_NEAR(adjust_saturation(r.src, f), r.ref(fmt::format("saturation_{:.1f}", f)), 0, f);
  for (double f : {-0.5, -0.3, 0.05, 0.45}) CHECK_IMAGE_NEAR(adjust_hue(r.src, f), r.ref(fmt::format("hue_{}", f)), 0, f);
  CHECK_IMAGE_NEAR(to_grayscale3(r.src), r.ref("grayscale"), 0, "grayscale");
  CHECK_THROWS_AS(adjust_hue(r.src, 0.6), Error);
  CHECK_THROWS_AS(adjust_brightness(r.src, -1), Error);
}

TEST_CASE("pad modes, center crop padding and out-of-image crops equal torchvision/PIL") {
  Refs r;
  CHECK_IMAGE_NEAR(pad(r.src, 3, 1, 4, 2, PadMode::constant, {7, 7, 7}), r.ref("pad_3_constant_fill7"), 0, "constant");
  CHECK_IMAGE_NEAR(pad(r.src, 5, 2, 1, 40, PadMode::reflect), r.ref("pad_reflect"), 0, "reflect (pad > size)");
  CHECK_IMAGE_NEAR(pad(r.src, 3, 60, 2, 1, PadMode::symmetric), r.ref("pad_symmetric"), 0, "symmetric (pad > size)");
  CHECK_IMAGE_NEAR(pad(r.src, 2, 3, 4, 5, PadMode::edge), r.ref("pad_edge"), 0, "edge");
  CHECK_IMAGE_NEAR(center_crop(r.src, 20, 20), r.ref("center_crop_20x20"), 0, "center 20 (half-even offset)");
  CHECK_IMAGE_NEAR(center_crop(r.src, 40, 60), r.ref("center_crop_40x60"), 0, "center larger");
  CHECK_IMAGE_NEAR(center_crop(r.src, 36, 54), r.ref("center_crop_36x54"), 0, "center mixed");
  CHECK_IMAGE_NEAR(crop(r.src, 30, -3, 12, 10), r.ref("crop_outside"), 0, "crop outside");
}

TEST_CASE("ToTensor and Normalize are torchvision's float32 ops") {
  Image img(1, 2);
  img.pixels = {0, 128, 255, 1, 2, 3};
  auto t = to_tensor(img);
  CHECK(t == std::vector<float>{0.f, 1.f / 255.f, 128.f / 255.f, 2.f / 255.f, 1.f, 3.f / 255.f});
  auto n = to_tensor(img, &kImageNetNormalize);
  CHECK(n[0] == (0.f - 0.485f) / 0.229f);
  CHECK(n[5] == (3.f / 255.f - 0.406f) / 0.225f);
}

TEST_CASE("Rng: fixed streams, ranges, unbiased permutation") {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 5; ++i) CHECK(a.next_u64() == b.next_u64());
  CHECK(Rng(42).next_u64() != c.next_u64());
  // std::mt19937_64 is fully specified: its 10000th output for the default seed is in the standard.
  std::mt19937_64 ref;
  ref.discard(9999);
  CHECK(ref() == 9981545732273789042ull);
  Rng r(7);
  std::set<int64_t> seen;
  for (int i = 0; i < 2000; ++i) {
    double u = r.uniform(-2.0, 3.0);
    CHECK((u >= -2.0 && u < 3.0));
    int64_t k = r.randint(5, 9);
    CHECK((k >= 5 && k < 9));
    seen.insert(k);
  }
  CHECK(seen.size() == 4);
  CHECK(Rng::for_key(1, 2, 3).next_u64() == Rng::for_key(1, 2, 3).next_u64());
  CHECK(Rng::for_key(1, 2, 3).next_u64() != Rng::for_key(1, 3, 2).next_u64());
}

TEST_CASE("RandomResizedCrop sampling: bounds, scale/ratio, fallback") {
  Rng rng(3);
  for (int i = 0; i < 500; ++i) {
    CropBox b = random_resized_crop_params(200, 300, rng);
    CHECK(b.height > 0);
    CHECK(b.width > 0);
    CHECK(b.top >= 0);
    CHECK(b.left >= 0);
    CHECK(b.top + b.height <= 200);
    CHECK(b.left + b.width <= 300);
    double area = double(b.height) * b.width / (200.0 * 300.0);
    CHECK(area >= 0.08 * 0.9);  // rounding of h and w to ints
  }
  // Impossible ratio for a 10x1000 strip: every try fails -> central crop with the ratio clamped.
  Rng r2(5);
  CropBox fb = random_resized_crop_params(10, 1000, r2, {0.9, 1.0}, {0.75, 1.3333333333333333});
  CHECK(fb.height == 10);
  CHECK(fb.width == 13);  // round(10 * 4/3)
  CHECK(fb.left == (1000 - 13) / 2);
  CHECK(fb.top == 0);
  CropBox tall = random_resized_crop_params(1000, 10, r2, {0.9, 1.0}, {0.75, 1.3333333333333333});
  CHECK(tall.width == 10);
  CHECK(tall.height == 13);  // round(10 / 0.75)
}

TEST_CASE("RandomCrop with padding covers every offset; too-large crop is an error") {
  Image img = noise_image(6, 6, 1);
  RandomCrop rc{6, 6, 2, PadMode::reflect, 0};
  std::set<std::pair<int, int>> offsets;
  Rng rng(11);
  Image padded = pad(img, 2, 2, 2, 2, PadMode::reflect);
  for (int i = 0; i < 400; ++i) {
    Image out = apply(Transform{rc}, img, rng);
    for (int t = 0; t <= 4; ++t)
      for (int l = 0; l <= 4; ++l)
        if (out.pixels == crop(padded, t, l, 6, 6).pixels) offsets.insert({t, l});
  }
  CHECK(offsets.size() == 25);
  Rng r2(1);
  CHECK_THROWS_AS(apply(Transform{RandomCrop{10, 10}}, img, r2), Error);
}

TEST_CASE("every random transform is reproducible for a seed and varies across seeds") {
  Image img = noise_image(48, 64, 9);
  std::vector<Transform> ts = {RandomCrop{32, 32, 4, PadMode::reflect, 0}, RandomResizedCrop{24, 24},
                               RandomHorizontalFlip{}, RandomVerticalFlip{}, RandomRotation{45, Interp::bilinear, 0},
                               RandomGrayscale{0.5}, ColorJitter{0.4, 0.4, 0.4, 0.1}};
  for (const Transform& t : ts) {
    CAPTURE(describe(t));
    std::set<std::vector<uint8_t>> distinct;
    for (uint64_t seed = 0; seed < 12; ++seed) {
      Rng a(seed), b(seed);
      Image x = apply(t, img, a), y = apply(t, img, b);
      CHECK(x.pixels == y.pixels);
      distinct.insert(x.pixels);
    }
    CHECK(distinct.size() >= 2);  // flips/grayscale have two outcomes; the rest many
  }
}

TEST_CASE("ColorJitter: factor ranges and a random order") {
  ColorJitter cj{0.4, 0.2, 0.0, 0.1};
  Rng rng(21);
  std::set<std::array<int, 4>> orders;
  for (int i = 0; i < 200; ++i) {
    JitterParams p = color_jitter_params(cj, rng);
    orders.insert(p.order);
    REQUIRE(p.brightness);
    CHECK((*p.brightness >= 0.6 && *p.brightness <= 1.4));
    REQUIRE(p.contrast);
    CHECK((*p.contrast >= 0.8 && *p.contrast <= 1.2));
    CHECK(!p.saturation);  // 0 disables, as torchvision's _check_input gives None
    REQUIRE(p.hue);
    CHECK((*p.hue >= -0.1 && *p.hue <= 0.1));
  }
  CHECK(orders.size() == 24);
}

TEST_CASE("spec strings: tokens, presets, sizes, errors naming the token") {
  Pipeline p = parse_pipeline("resize=300,rotate=45,center_crop=224,hflip,vflip,grayscale=0.1,normalize=imagenet");
  REQUIRE(p.transforms.size() == 6);
  CHECK(std::get<Resize>(p.transforms[0]).size == 300);
  CHECK(std::get<RandomRotation>(p.transforms[1]).degrees == 45);
  CHECK(std::get<CenterCrop>(p.transforms[2]).height == 224);
  CHECK(std::get<RandomGrayscale>(p.transforms[5]).p == 0.1);
  CHECK(p.normalize.has_value());
  CHECK(p.output_size() == std::pair{224, 224});
  CHECK(p.decode_hint().min_short_side == 300);

  Pipeline train = parse_pipeline("imagenet-train");
  REQUIRE(train.transforms.size() == 2);
  CHECK(std::get<RandomResizedCrop>(train.transforms[0]).height == 224);
  CHECK(std::get<RandomHorizontalFlip>(train.transforms[1]).p == 0.5);
  CHECK(train.normalize->mean[0] == 0.485f);
  CHECK(!train.decode_hint().any());

  Pipeline cifar = parse_pipeline("cifar-train");
  REQUIRE(cifar.transforms.size() == 2);
  auto rc = std::get<RandomCrop>(cifar.transforms[0]);
  CHECK(rc.height == 32);
  CHECK(rc.padding == 4);
  CHECK(rc.mode == PadMode::reflect);
  REQUIRE(cifar.normalize);  // as a fine-tuning tutorial's, with the statistics ImageNet weights expect
  CHECK(cifar.normalize->mean == kImageNetNormalize.mean);
  CHECK(cifar.normalize->std == kImageNetNormalize.std);
  // batch_size: the fixed output size, or S x S when resize=S sets it last (what square inputs give).
  CHECK(parse_pipeline("resize=20,hflip").batch_size() == std::pair{20, 20});
  CHECK(!parse_pipeline("resize=20,hflip").output_size());
  CHECK(parse_pipeline("resize=20,center_crop=16").batch_size() == std::pair{16, 16});
  CHECK(parse_pipeline("center_crop=16,resize=20").batch_size() == std::pair{20, 20});
  CHECK(!parse_pipeline("hflip").batch_size());
  Pipeline cifar_eval = parse_pipeline("cifar-eval");
  REQUIRE(cifar_eval.transforms.size() == 1);
  CHECK(cifar_eval.output_size() == std::pair{32, 32});
  CHECK(cifar_eval.normalize->mean == kImageNetNormalize.mean);
  // A later normalize replaces the preset's.
  CHECK(parse_pipeline("cifar-train,normalize=0.5:0.5:0.5/0.5:0.5:0.5").normalize->mean[0] == 0.5f);

  Pipeline mix = parse_pipeline("imagenet-eval, jitter=0.4:0.4:0.4:0.1, resize=10x20:nearest, normalize=0.5:0.5:0.5/0.2:0.2:0.2");
  CHECK(mix.transforms.size() == 4);
  CHECK(std::get<Resize>(mix.transforms[3]).interp == Interp::nearest);
  CHECK(mix.output_size() == std::pair{10, 20});
  CHECK(mix.normalize->std[2] == 0.2f);
  CHECK(!parse_pipeline("resize=256").output_size());

  for (const char* bad : {"resize=abc", "resize", "center_crop=0", "hflip=1.5", "blur=3", "rotate=-5", "jitter=0.1:0.2",
                          "normalize=foo", "random_crop=32:pad=x", "random_resized_crop=224:scale=0.5-2", "grayscale=2",
                          "resize=256,,hflip", "rotate=30:fill=300", "jitter=0:0:0:0.7"}) {
    CAPTURE(bad);
    try {
      parse_pipeline(bad);
      FAIL("expected an error for " << bad);
    } catch (const Error& e) {
      std::string msg = e.what();
      CHECK(msg.find("bad transform spec token") != std::string::npos);
      CHECK(msg.find("presets") != std::string::npos);  // usage text follows
    }
  }
  CHECK_THROWS_AS(parse_pipeline(""), Error);
}

TEST_CASE("a full train pipeline is reproducible and produces its declared size") {
  Image img = noise_image(75, 100, 4);
  Pipeline p = parse_pipeline("random_resized_crop=40x48,hflip,rotate=20:bilinear,jitter=0.4:0.4:0.4:0.1,grayscale=0.2,normalize=imagenet");
  for (uint64_t seed = 0; seed < 5; ++seed) {
    Rng a(seed), b(seed);
    auto x = p.apply_to_tensor(img, a), y = p.apply_to_tensor(img, b);
    CHECK(x == y);
    CHECK(x.size() == size_t(3 * 40 * 48));
  }
  CHECK(p.describe().find("RandomResizedCrop((40, 48)") != std::string::npos);
}

// tests/gen/make_resize_cases.py: PIL img.crop(box).resize((ow, oh), BILINEAR) (F.resized_crop) for 60
// boxes of a 61x83 noise image, many touching the bottom-right corner where the vector horizontal pass
// must fall back to the scalar loop. Both the copying and the in-place region paths must be bit-exact.
TEST_CASE("crop + bilinear resize equals PIL over many boxes, via resize(crop()) and resize_into") {
  SafetensorsFile f = SafetensorsFile::open(fixture("data/resize_cases.safetensors"));
  Image src = test::ref_image(f, "source");
  std::vector<int64_t> boxes = f.copy_as<int64_t>("boxes"), sizes = f.copy_as<int64_t>("sizes");
  REQUIRE(f.at("boxes").shape == std::vector<int64_t>{int64_t(sizes.size() / 2), 4});
  REQUIRE(sizes.size() / 2 >= 60);
  std::vector<uint8_t> scratch;
  for (size_t i = 0; i < sizes.size() / 2; ++i) {
    int top = int(boxes[i * 4]), left = int(boxes[i * 4 + 1]), h = int(boxes[i * 4 + 2]), w = int(boxes[i * 4 + 3]);
    int oh = int(sizes[i * 2]), ow = int(sizes[i * 2 + 1]);
    std::string label = fmt::format("case {}: box top={} left={} {}x{} -> {}x{}", i, top, left, h, w, oh, ow);
    Image want = test::ref_image(f, fmt::format("out.{}", i));
    std::string copying = label + " resize(crop())", region = label + " resize_into";
    CHECK_IMAGE_NEAR(resize(crop(src, top, left, h, w), oh, ow, Interp::bilinear), want, 0, copying);
    Image got(oh, ow, 0xAB);  // junk-filled: an unwritten byte would show
    resize_into(src, 0, 0, {top, left, h, w}, oh, ow, {0, 0, oh, ow}, Interp::bilinear, got.pixels.data(), scratch);
    CHECK_IMAGE_NEAR(got, want, 0, region);
  }
}

// hflip's kernel runs 5 pixels per vector step with a 16-byte load starting before and a store
// reaching past them: every width from 0 to 70 (steps, tails, rows shorter than one step) against the
// pixel-by-pixel definition, with guard bytes around the destination.
TEST_CASE("reverse_pixels (hflip's kernel) at every width, without touching bytes outside the row") {
  Rng r(17);
  for (int w = 0; w <= 70; ++w) {
    std::vector<uint8_t> src(size_t(w) * 3), dst(size_t(w) * 3 + 32, 0xEE);
    for (auto& v : src) v = uint8_t(r.next_u64() >> 56);
    reverse_pixels(src.data(), w, dst.data() + 16);
    for (int j = 0; j < w; ++j)
      for (int c = 0; c < 3; ++c) REQUIRE(dst[16 + size_t(j) * 3 + c] == src[size_t(w - 1 - j) * 3 + c]);
    for (size_t k = 0; k < 16; ++k) {
      REQUIRE(dst[k] == 0xEE);
      REQUIRE(dst[16 + size_t(w) * 3 + k] == 0xEE);
    }
  }
}
