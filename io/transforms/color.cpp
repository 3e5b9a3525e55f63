// PIL colour arithmetic (Pillow libImaging Convert.c rgb2L/rgb2hsv/hsv2rgb, Blend.c ImagingBlend,
// PIL/ImageEnhance.py) reimplemented with the same float/double types so results are bit-exact.
// The kernels work on fixed-size blocks of pixels with branch-free selects so the compiler can
// vectorise them; IEEE division, conversion and rounding stay the same per element, and
// tests/data/test_color_exact.cpp checks every RGB triplet against the plain per-pixel formulas.
#include "io/transforms/color.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "io/transforms/color_kernels.h"

namespace rtune::io {

namespace color_kernels {

namespace {

constexpr size_t kBlock = 64;  // pixels per vectorised block

// ImagingBlend's per-byte arithmetic with im1 given per byte by `deg(i)`; the four cases mirror
// Pillow's (degenerate / copy / lerp / clip). Plain loops the compiler vectorises.
template <class Degenerate>
void blend_loop(Degenerate deg, const uint8_t* b, uint8_t* o, size_t n, float alpha) {
  if (alpha == 0.0f) {
    for (size_t i = 0; i < n; ++i) o[i] = uint8_t(deg(i));
  } else if (alpha == 1.0f) {
    std::copy(b, b + n, o);
  } else if (alpha >= 0 && alpha <= 1.0f) {
    for (size_t i = 0; i < n; ++i) {
      int x = deg(i), y = b[i];
      o[i] = uint8_t(int(x + alpha * (y - x)));
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      int x = deg(i), y = b[i];
      float t = float(x + alpha * (y - x));
      t = t <= 0.0f ? 0.0f : t >= 255.0f ? 255.0f : t;
      o[i] = uint8_t(int(t));
    }
  }
}

// This file is built with -fno-trapping-math (cmake/data.cmake), which lets GCC if-convert the float
// operations of the hue kernel and vectorise it. It changes no value (only whether FP exceptions may
// be raised); -ffp-contract=off still holds.

inline int32_t clamp8(int32_t v) { return std::min(std::max(v, 0), 255); }

// std::round for 0 <= x < 2^31, exactly: x - trunc(x) is exact, so the half-way test is too.
inline int round_nonneg(double x) {
  int t = int(x);
  return t + int(x - double(t) >= 0.5);
}

// hsv2rgb's sectors (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q), i = 6 as 0: for each output channel,
// 2 bits per sector give the source, 0 v, 1 q, 2 t, 3 p.
constexpr uint32_t pack_sectors(const int (&src)[7]) {
  uint32_t m = 0;
  for (int k = 0; k < 7; ++k) m |= uint32_t(src[k]) << (2 * k);
  return m;
}
constexpr uint32_t kSrcR = pack_sectors({0, 1, 3, 3, 2, 0, 0});
constexpr uint32_t kSrcG = pack_sectors({2, 0, 0, 1, 3, 3, 2});
constexpr uint32_t kSrcB = pack_sectors({3, 3, 2, 0, 0, 1, 3});

inline int32_t pick(int32_t c, int32_t v, int32_t q, int32_t t, int32_t p) {
  return (v & -int32_t(c == 0)) | (q & -int32_t(c == 1)) | (t & -int32_t(c == 2)) | (p & -int32_t(c == 3));
}

// Pillow rgb2hsv_row + H shift + hsv2rgb for n <= kBlock pixels. Structure-of-arrays with every
// branch turned into a select, so the loop over kBlock lanes vectorises (divisions included).
void hue_block(const uint8_t* in, uint8_t* out, size_t n, uint8_t shift) {
  int32_t R[kBlock] = {}, G[kBlock] = {}, B[kBlock] = {};
  int32_t OR[kBlock], OG[kBlock], OB[kBlock];
  for (size_t j = 0; j < n; ++j) {
    R[j] = in[3 * j];
    G[j] = in[3 * j + 1];
    B[j] = in[3 * j + 2];
  }
  for (size_t j = 0; j < kBlock; ++j) {
    int32_t r = R[j], g = G[j], b = B[j];
    int32_t maxc = std::max(r, std::max(g, b)), minc = std::min(r, std::min(g, b));
    bool gray = maxc == minc;
    // rgb2hsv_row. Gray lanes divide by 1 instead of 0; their result is replaced below.
    float cr = float(gray ? 1 : maxc - minc);
    float s = float(maxc - minc) / float(gray ? 1 : maxc);
    float rc = float(maxc - r) / cr, gc = float(maxc - g) / cr, bc = float(maxc - b) / cr;
    // All three candidates are computed, then selected: no FP operation sits under a branch.
    float h_r = bc - gc, h_g = float(2.0 + rc - bc), h_b = float(4.0 + gc - rc);
    float h = r == maxc ? h_r : g == maxc ? h_g : h_b;
    // fmod(h / 6.0 + 1.0, 1.0) with h in [-1, 5]: the argument is in [5/6, 11/6], where x - 1.0 is exact.
    double x = double(h) / 6.0 + 1.0;
    double x_1 = x - 1.0;
    x = x >= 1.0 ? x_1 : x;
    int32_t uh = clamp8(int32_t(float(x) * 255.0));
    int32_t us = clamp8(int32_t(s * 255.0));
    // H shift (uint8 wrap), then hsv2rgb. h * 6 / 255 >= 0, so floor is truncation.
    int32_t hh = (uh + shift) & 0xFF;
    double h6 = double(float(hh)) * 6.0 / 255.0;
    int32_t i = int32_t(h6);
    float f = float(h6 - double(float(i)));
    float fs = float(double(float(us)) / 255.0);
    double v = double(float(maxc));
    int32_t p = clamp8(round_nonneg(v * (1.0 - fs)));
    int32_t q = clamp8(round_nonneg(v * (1.0 - fs * f)));
    int32_t t = clamp8(round_nonneg(v * (1.0 - fs * (1.0 - f))));
    // hsv2rgb's switch (i % 6) as arithmetic: 2 bits per i in [0, 6] name the source of each
    // channel (0 v, 1 q, 2 t, 3 p); s == 0 forces v. Selects or a switch here would be turned back into
    // branches by the compiler, and then the loop no longer vectorises.
    int32_t keep = int32_t(gray | (us == 0)) - 1;  // 0 when flat, else all ones
    int32_t c0 = (kSrcR >> (2 * i)) & 3 & keep, c1 = (kSrcG >> (2 * i)) & 3 & keep, c2 = (kSrcB >> (2 * i)) & 3 & keep;
    int32_t o0 = pick(c0, maxc, q, t, p), o1 = pick(c1, maxc, q, t, p), o2 = pick(c2, maxc, q, t, p);
    OR[j] = o0;
    OG[j] = o1;
    OB[j] = o2;
  }
  for (size_t j = 0; j < n; ++j) {
    out[3 * j] = uint8_t(OR[j]);
    out[3 * j + 1] = uint8_t(OG[j]);
    out[3 * j + 2] = uint8_t(OB[j]);
  }
}


}  // namespace

void blend_bytes(const uint8_t* a, const uint8_t* b, uint8_t* o, size_t n, float alpha) {
  blend_loop([a](size_t i) { return int(a[i]); }, b, o, n, alpha);
}

void blend_const(const uint8_t* in, uint8_t* out, size_t n_bytes, uint8_t degenerate, float alpha) {
  blend_loop([degenerate](size_t) { return int(degenerate); }, in, out, n_bytes, alpha);
}

void blend_gray(const uint8_t* in, uint8_t* out, size_t n_pixels, float alpha) {
  // Blocks of pixels with their luma spread to 3 bytes, so the blend itself is a flat byte loop.
  uint8_t deg[3 * kBlock];
  for (size_t p0 = 0; p0 < n_pixels; p0 += kBlock) {
    size_t n = std::min(kBlock, n_pixels - p0);
    const uint8_t* src = in + 3 * p0;
    for (size_t j = 0; j < n; ++j) deg[3 * j] = deg[3 * j + 1] = deg[3 * j + 2] = luma(src + 3 * j);
    blend_bytes(deg, src, out + 3 * p0, 3 * n, alpha);
  }
}

void hue_shift(const uint8_t* in, uint8_t* out, size_t n_pixels, uint8_t shift) {
  for (size_t p0 = 0; p0 < n_pixels; p0 += kBlock)
    hue_block(in + 3 * p0, out + 3 * p0, std::min(kBlock, n_pixels - p0), shift);
}

}  // namespace color_kernels

namespace {

void check_factor(const char* op, double f) {
  RTUNE_CHECK(std::isfinite(f) && f >= 0, "{}: factor must be a finite number >= 0, got {}", op, f);
}

}  // namespace

Image to_grayscale3(const Image& in) {
  Image out(in.height, in.width);
  for (size_t i = 0; i < in.pixels.size(); i += 3) {
    uint8_t l = luma(&in.pixels[i]);
    out.pixels[i] = out.pixels[i + 1] = out.pixels[i + 2] = l;
  }
  return out;
}

Image adjust_brightness(const Image& in, double factor) {
  check_factor("adjust_brightness", factor);
  Image out(in.height, in.width);
  color_kernels::blend_const(in.pixels.data(), out.pixels.data(), in.pixels.size(), 0, float(factor));
  return out;
}

Image adjust_contrast(const Image& in, double factor) {
  check_factor("adjust_contrast", factor);
  // ImageStat mean of the L image (exact integer sum), then int(mean + 0.5).
  uint64_t sum = 0;
  for (size_t i = 0; i < in.pixels.size(); i += 3) sum += luma(&in.pixels[i]);
  double count = double(in.pixels.size() / 3);
  uint8_t mean = uint8_t(int(double(sum) / count + 0.5));
  Image out(in.height, in.width);
  color_kernels::blend_const(in.pixels.data(), out.pixels.data(), in.pixels.size(), mean, float(factor));
  return out;
}

Image adjust_saturation(const Image& in, double factor) {
  check_factor("adjust_saturation", factor);
  Image out(in.height, in.width);
  color_kernels::blend_gray(in.pixels.data(), out.pixels.data(), in.pixels.size() / 3, float(factor));
  return out;
}

Image adjust_hue(const Image& in, double hue_factor) {
  RTUNE_CHECK(hue_factor >= -0.5 && hue_factor <= 0.5, "adjust_hue: hue_factor must be in [-0.5, 0.5], got {}",
              hue_factor);
  // numpy: np.array(hue * 255).astype(np.uint8): truncation toward zero, then wrap modulo 256.
  uint8_t shift = uint8_t(int64_t(std::trunc(hue_factor * 255.0)) & 0xFF);
  Image out(in.height, in.width);
  color_kernels::hue_shift(in.pixels.data(), out.pixels.data(), in.pixels.size() / 3, shift);
  return out;
}

}  // namespace rtune::io
