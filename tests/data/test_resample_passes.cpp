// data_resample_passes: the vector resampling passes (vpmaddwd on split 22-bit weights, 4 outputs x
// 2 rows per step, 16-byte loads and stores) against Pillow's tap-by-tap loop written out here, over
// thousands of random sizes: every tap-group count, odd row counts, widths that are not multiples of
// 4, and sources that hold exactly the pixels the taps read, so the loads that would pass the buffer
// end must fall back. The weights themselves are held to Pillow by data_transforms' fixtures. Runs
// under ASan, which also checks that no load or store leaves its buffer.
#include <doctest/doctest.h>

#include <algorithm>

#include "io/transforms/resample_passes.h"
#include "io/transforms/resize.h"
#include "io/transforms/random.h"
#include "tests/data/image_test_util.h"

using namespace rtune;
using namespace rtune::io;

namespace {

uint8_t clip_shifted(int32_t s) {
  int32_t v = s >> 22;
  return uint8_t(std::clamp(v, 0, 255));
}

// Pillow's ImagingResampleHorizontal_8bpc / ImagingResampleVertical_8bpc on a whole image.
Image horizontal_ref(const Image& in, const resample::Coeffs& c, int out_w) {
  Image out(in.height, out_w);
  for (int y = 0; y < in.height; ++y)
    for (int x = 0; x < out_w; ++x)
      for (int ch = 0; ch < 3; ++ch) {
        int32_t s = 1 << 21;
        for (int t = 0; t < c.count[x]; ++t) s += in.at(y, c.first[x] + t)[ch] * c.k[size_t(x) * c.ksize + t];
        out.at(y, x)[ch] = clip_shifted(s);
      }
  return out;
}

Image vertical_ref(const Image& in, const resample::Coeffs& c, int out_h) {
  Image out(out_h, in.width);
  for (int y = 0; y < out_h; ++y)
    for (int x = 0; x < in.width; ++x)
      for (int ch = 0; ch < 3; ++ch) {
        int32_t s = 1 << 21;
        for (int t = 0; t < c.count[y]; ++t) s += in.at(c.first[y] + t, x)[ch] * c.k[size_t(y) * c.ksize + t];
        out.at(y, x)[ch] = clip_shifted(s);
      }
  return out;
}

// Pillow 13.0's pass order: vertical first when the height shrinks by more than twice what the width
// shrinks, in_h - out_h > 2 (in_w - out_w) (io/transforms/resize.cpp; the older rule, "only when the width
// does not shrink", was 1 LSB off on 24x19 -> 16x16: tests/data/test_small_rrc.cpp).
Image resize_ref(const Image& in, int out_h, int out_w) {
  const bool need_h = out_w != in.width, need_v = out_h != in.height;
  auto h = [&](const Image& im) { return need_h ? horizontal_ref(im, resample::bilinear_coeffs(in.width, out_w), out_w) : im; };
  auto v = [&](const Image& im) { return need_v ? vertical_ref(im, resample::bilinear_coeffs(in.height, out_h), out_h) : im; };
  if (out_h < in.height && in.height - out_h > 2 * (in.width - out_w)) return h(v(in));
  return v(h(in));
}

Image noise(int h, int w, Rng& r) {
  Image img(h, w);
  for (auto& p : img.pixels) p = uint8_t(r.next_u64() >> 56);
  return img;
}

Image crop_copy(const Image& in, const CropBox& b) {
  Image out(b.height, b.width);
  for (int y = 0; y < b.height; ++y) std::copy_n(in.at(b.top + y, b.left), size_t(b.width) * 3, out.at(y, 0));
  return out;
}

}  // namespace

TEST_CASE("vector resampling equals Pillow's scalar loop for random sizes, boxes and tight windows") {
  Rng r(2026);
  auto pick = [&](int lo, int hi) { return lo + int(r.next_u64() % uint64_t(hi - lo + 1)); };
  std::vector<uint8_t> scratch;
  int cases = 0, groups_seen_max = 0;
  for (int i = 0; i < 1500; ++i) {
    // Shrinks up to ~20x (up to 11 four-tap groups), enlargements, one-axis and same-size resizes.
    const int in_h = pick(1, 90), in_w = pick(1, 90);
    const int out_h = i % 7 == 0 ? in_h : pick(1, 90), out_w = i % 11 == 0 ? in_w : pick(1, 90);
    const Image src = noise(in_h, in_w, r);
    const Image want = resize_ref(src, out_h, out_w);
    const int bh = pick(1, out_h), bw = pick(1, out_w);
    const CropBox box{pick(0, out_h - bh), pick(0, out_w - bw), bh, bw};
    // The source window holds exactly the pixels this box's taps read.
    const CropBox need = resize_source_box(in_h, in_w, out_h, out_w, box, Interp::bilinear);
    const Image window = crop_copy(src, need);
    Image got(bh, bw, 0xAB);
    resize_into(window, need.top, need.left, {0, 0, in_h, in_w}, out_h, out_w, box, Interp::bilinear, got.pixels.data(),
                scratch);
    const Image want_box = crop_copy(want, box);
    auto d = test::diff(got, want_box);
    INFO("case " << i << ": " << in_h << "x" << in_w << " -> " << out_h << "x" << out_w << ", box (" << box.top << ", "
                 << box.left << ") " << bh << "x" << bw << ": max |diff| " << d.max_abs << " at " << d.worst);
    REQUIRE(d.max_abs == 0);
    groups_seen_max = std::max(groups_seen_max, (resample::bilinear_coeffs(in_w, out_w).ksize + 3) / 4);
    ++cases;
  }
  CHECK(cases == 1500);
  CHECK(groups_seen_max >= 8);
}

TEST_CASE("a full-size RandomResizedCrop-like resample is exact (4-output blocks, 16-byte stores)") {
  Rng r(7);
  const Image src = noise(375, 500, r);
  std::vector<uint8_t> scratch;
  for (CropBox b : {CropBox{0, 0, 375, 500}, CropBox{10, 37, 301, 411}, CropBox{200, 350, 101, 149}, CropBox{0, 0, 80, 90}}) {
    const Image want = resize_ref(crop_copy(src, b), 224, 224);
    Image got(224, 224, 0xAB);
    resize_into(src, 0, 0, b, 224, 224, {0, 0, 224, 224}, Interp::bilinear, got.pixels.data(), scratch);
    auto d = test::diff(got, want);
    INFO("box " << b.height << "x" << b.width << ": max |diff| " << d.max_abs << " at " << d.worst);
    CHECK(d.max_abs == 0);
  }
}
