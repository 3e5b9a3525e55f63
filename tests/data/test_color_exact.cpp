// data_color_exact: the vectorised colour kernels of io/transforms/color_kernels.h against a plain,
// per-pixel copy of Pillow's formulas (Convert.c rgb2hsv_row/hsv2rgb, Blend.c ImagingBlend; the same
// float/double types, fmod, floor and round calls), over all 2^24 RGB triplets: bit-exact or fail.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "io/transforms/color.h"
#include "io/transforms/color_kernels.h"

using namespace rtune::io;

namespace {

// The oracle, kept as Pillow writes it. Pillow's C is not FMA-contracted; neither may this be (this
// test is built with -ffp-contract=off: cmake/data.cmake).

uint8_t clip8(int v) { return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v); }

void rgb_to_hsv_ref(const uint8_t* in, uint8_t* out) {
  uint8_t r = in[0], g = in[1], b = in[2];
  uint8_t maxc = std::max(r, std::max(g, b)), minc = std::min(r, std::min(g, b));
  uint8_t uh = 0, us = 0;
  if (minc != maxc) {
    float cr = float(maxc - minc);
    float s = cr / float(maxc);
    float rc = float(maxc - r) / cr, gc = float(maxc - g) / cr, bc = float(maxc - b) / cr;
    float h;
    if (r == maxc) h = bc - gc;
    else if (g == maxc) h = float(2.0 + rc - bc);
    else h = float(4.0 + gc - rc);
    h = float(std::fmod(h / 6.0 + 1.0, 1.0));
    uh = clip8(int(h * 255.0));
    us = clip8(int(s * 255.0));
  }
  out[0] = uh;
  out[1] = us;
  out[2] = maxc;
}

void hsv_to_rgb_ref(const uint8_t* in, uint8_t* out) {
  uint8_t h = in[0], s = in[1], v = in[2];
  if (s == 0) {
    out[0] = out[1] = out[2] = v;
    return;
  }
  int i = int(std::floor(float(h) * 6.0 / 255.0));
  float f = float(float(h) * 6.0 / 255.0 - float(i));
  float fs = float(float(s) / 255.0);
  uint8_t up = clip8(int(std::round(float(v) * (1.0 - fs))));
  uint8_t uq = clip8(int(std::round(float(v) * (1.0 - fs * f))));
  uint8_t ut = clip8(int(std::round(float(v) * (1.0 - fs * (1.0 - f)))));
  switch (i % 6) {
    case 0: out[0] = v;  out[1] = ut; out[2] = up; break;
    case 1: out[0] = uq; out[1] = v;  out[2] = up; break;
    case 2: out[0] = up; out[1] = v;  out[2] = ut; break;
    case 3: out[0] = up; out[1] = uq; out[2] = v;  break;
    case 4: out[0] = ut; out[1] = up; out[2] = v;  break;
    default: out[0] = v; out[1] = up; out[2] = uq; break;
  }
}

// ImagingBlend of one byte: im1 = a (the degenerate), im2 = b.
uint8_t blend_ref(int a, int b, float alpha) {
  if (alpha == 0.0f) return uint8_t(a);
  if (alpha == 1.0f) return uint8_t(b);
  if (alpha >= 0 && alpha <= 1.0f) return uint8_t(a + alpha * (b - a));
  float t = float(a + alpha * (b - a));
  return t <= 0.0f ? 0 : t >= 255.0f ? 255 : uint8_t(t);
}


// Every RGB triplet once, r slowest: 2^24 pixels.
const std::vector<uint8_t>& all_triplets() {
  static const std::vector<uint8_t> v = [] {
    std::vector<uint8_t> p(size_t(3) << 24);
    for (uint32_t c = 0; c < (1u << 24); ++c) {
      p[3 * size_t(c)] = uint8_t(c >> 16);
      p[3 * size_t(c) + 1] = uint8_t(c >> 8);
      p[3 * size_t(c) + 2] = uint8_t(c);
    }
    return p;
  }();
  return v;
}

// Number of differing bytes, with the first one described in `first`.
size_t count_mismatches(const std::vector<uint8_t>& in, const std::vector<uint8_t>& got,
                        const std::vector<uint8_t>& want, std::string& first) {
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] == want[i]) continue;
    if (bad++ == 0) {
      size_t px = i / 3 * 3;
      first = fmt::format("rgb ({}, {}, {}) channel {}: got {}, want {}", in[px], in[px + 1], in[px + 2], i % 3,
                          got[i], want[i]);
    }
  }
  return bad;
}

}  // namespace

TEST_CASE("hue_shift equals Pillow's rgb2hsv + shift + hsv2rgb on every RGB triplet") {
  const std::vector<uint8_t>& in = all_triplets();
  std::vector<uint8_t> got(in.size()), want(in.size());
  for (int shift : {0, 1, 25, 127, 128, 230, 255}) {
    color_kernels::hue_shift(in.data(), got.data(), in.size() / 3, uint8_t(shift));
    for (size_t i = 0; i < in.size(); i += 3) {
      uint8_t hsv[3];
      rgb_to_hsv_ref(&in[i], hsv);
      hsv[0] = uint8_t(hsv[0] + shift);
      hsv_to_rgb_ref(hsv, &want[i]);
    }
    std::string first;
    size_t bad = count_mismatches(in, got, want, first);
    CHECK_MESSAGE(bad == 0, fmt::format("shift {}: {} bytes differ, first {}", shift, bad, first));
  }
}

TEST_CASE("hue_shift handles partial blocks and leaves bytes past the end alone") {
  // 3 pixels short of a whole number of blocks, one sentinel pixel after.
  const std::vector<uint8_t>& all = all_triplets();
  size_t n = 61;
  std::vector<uint8_t> in(all.begin() + 3 * 1000003, all.begin() + 3 * (1000003 + n));
  std::vector<uint8_t> got(3 * (n + 1), 0xAB), want(3 * n);
  color_kernels::hue_shift(in.data(), got.data(), n, 19);
  for (size_t i = 0; i < 3 * n; i += 3) {
    uint8_t hsv[3];
    rgb_to_hsv_ref(&in[i], hsv);
    hsv[0] = uint8_t(hsv[0] + 19);
    hsv_to_rgb_ref(hsv, &want[i]);
  }
  CHECK(std::equal(want.begin(), want.end(), got.begin()));
  CHECK(got[3 * n] == 0xAB);
  CHECK(got[3 * n + 2] == 0xAB);
}

TEST_CASE("blend_gray (saturation) equals ImagingBlend(L, img, factor) on every RGB triplet") {
  const std::vector<uint8_t>& in = all_triplets();
  std::vector<uint8_t> got(in.size()), want(in.size());
  for (float alpha : {0.0f, 0.6f, 1.0f, 1.4f, 1.7f, 0.3337f, 2.9f}) {
    color_kernels::blend_gray(in.data(), got.data(), in.size() / 3, alpha);
    for (size_t i = 0; i < in.size(); i += 3) {
      uint8_t l = luma(&in[i]);
      for (int c = 0; c < 3; ++c) want[i + c] = blend_ref(l, in[i + c], alpha);
    }
    std::string first;
    size_t bad = count_mismatches(in, got, want, first);
    CHECK_MESSAGE(bad == 0, fmt::format("alpha {}: {} bytes differ, first {}", alpha, bad, first));
  }
}

TEST_CASE("blend_const (brightness, contrast) and blend_bytes equal ImagingBlend for every byte pair") {
  // All (degenerate, input) byte pairs: blend_const over 0..255 for each degenerate, blend_bytes over
  // the 2^16 pairs at once.
  std::vector<uint8_t> bytes(256), pa(1 << 16), pb(1 << 16), got_pairs(1 << 16);
  for (int i = 0; i < 256; ++i) bytes[i] = uint8_t(i);
  for (int i = 0; i < (1 << 16); ++i) pa[i] = uint8_t(i >> 8), pb[i] = uint8_t(i);
  for (float alpha : {0.0f, 0.6f, 1.0f, 1.4f, 1.7f, 0.3337f, 2.9f, 1e-7f}) {
    size_t bad = 0;
    std::string first;
    for (int a = 0; a < 256; ++a) {
      uint8_t got[256];
      color_kernels::blend_const(bytes.data(), got, 256, uint8_t(a), alpha);
      for (int b = 0; b < 256; ++b) {
        uint8_t want = blend_ref(a, b, alpha);
        if (got[b] != want && bad++ == 0) first = fmt::format("const a={} b={}: got {}, want {}", a, b, got[b], want);
      }
    }
    color_kernels::blend_bytes(pa.data(), pb.data(), got_pairs.data(), pa.size(), alpha);
    for (size_t i = 0; i < pa.size(); ++i) {
      uint8_t want = blend_ref(pa[i], pb[i], alpha);
      if (got_pairs[i] != want && bad++ == 0)
        first = fmt::format("pair a={} b={}: got {}, want {}", pa[i], pb[i], got_pairs[i], want);
    }
    CHECK_MESSAGE(bad == 0, fmt::format("alpha {}: {} mismatches, first {}", alpha, bad, first));
  }
}

TEST_CASE("the Image-level ops route through the checked kernels") {
  // A 7x9 image of varied pixels: adjust_* must equal the oracle applied pixel by pixel.
  Image img(7, 9);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = uint8_t((i * 97 + i / 3 * 31) & 0xFF);
  Image hue = adjust_hue(img, 0.1);  // shift uint8(trunc(25.5)) = 25
  Image sat = adjust_saturation(img, 1.3);
  Image bri = adjust_brightness(img, 0.7);
  for (size_t i = 0; i < img.pixels.size(); i += 3) {
    uint8_t hsv[3], rgb[3];
    rgb_to_hsv_ref(&img.pixels[i], hsv);
    hsv[0] = uint8_t(hsv[0] + 25);
    hsv_to_rgb_ref(hsv, rgb);
    uint8_t l = luma(&img.pixels[i]);
    for (int c = 0; c < 3; ++c) {
      CHECK(hue.pixels[i + c] == rgb[c]);
      CHECK(sat.pixels[i + c] == blend_ref(l, img.pixels[i + c], 1.3f));
      CHECK(bri.pixels[i + c] == blend_ref(0, img.pixels[i + c], 0.7f));
    }
  }
}
