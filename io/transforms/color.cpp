// PIL colour arithmetic (Pillow libImaging Convert.c rgb2L/rgb2hsv/hsv2rgb, Blend.c ImagingBlend,
// PIL/ImageEnhance.py) reimplemented with the same float/double types so results are bit-exact.
#include "io/transforms/color.h"

#include <cmath>
#include <vector>

#include "engine/error.h"

namespace rtune::io {

namespace {

// ImagingBlend(im1, im2, alpha) with im1 given per byte by `degenerate(i)`. alpha is a C float.
template <class Degenerate>
Image blend(const Image& img, float alpha, Degenerate degenerate) {
  Image out(img.height, img.width);
  const size_t n = img.pixels.size();
  const uint8_t* in2 = img.pixels.data();
  uint8_t* o = out.pixels.data();
  if (alpha == 0.0f) {
    for (size_t i = 0; i < n; ++i) o[i] = degenerate(i);
  } else if (alpha == 1.0f) {
    out.pixels = img.pixels;
  } else if (alpha >= 0 && alpha <= 1.0f) {
    for (size_t i = 0; i < n; ++i) {
      int a = degenerate(i), b = in2[i];
      o[i] = uint8_t(a + alpha * (b - a));
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      int a = degenerate(i), b = in2[i];
      float t = float(a + alpha * (b - a));
      o[i] = t <= 0.0f ? 0 : t >= 255.0f ? 255 : uint8_t(t);
    }
  }
  return out;
}

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
  return blend(in, float(factor), [](size_t) { return uint8_t(0); });
}

Image adjust_contrast(const Image& in, double factor) {
  check_factor("adjust_contrast", factor);
  // ImageStat mean of the L image (exact integer sum), then int(mean + 0.5).
  uint64_t sum = 0;
  for (size_t i = 0; i < in.pixels.size(); i += 3) sum += luma(&in.pixels[i]);
  double count = double(in.pixels.size() / 3);
  uint8_t mean = uint8_t(int(double(sum) / count + 0.5));
  return blend(in, float(factor), [mean](size_t) { return mean; });
}

Image adjust_saturation(const Image& in, double factor) {
  check_factor("adjust_saturation", factor);
  std::vector<uint8_t> gray(in.pixels.size() / 3);
  for (size_t p = 0; p < gray.size(); ++p) gray[p] = luma(&in.pixels[p * 3]);
  return blend(in, float(factor), [&gray](size_t i) { return gray[i / 3]; });
}

namespace {

inline uint8_t clip8(int v) { return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v); }

// Pillow rgb2hsv_row ("following colorsys.py"): float and double exactly where Pillow has them.
void rgb_to_hsv(const uint8_t* in, uint8_t* out) {
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

// Pillow hsv2rgb.
void hsv_to_rgb(const uint8_t* in, uint8_t* out) {
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

}  // namespace

Image adjust_hue(const Image& in, double hue_factor) {
  RTUNE_CHECK(hue_factor >= -0.5 && hue_factor <= 0.5, "adjust_hue: hue_factor must be in [-0.5, 0.5], got {}",
              hue_factor);
  // numpy: np.array(hue * 255).astype(np.uint8): truncation toward zero, then wrap modulo 256.
  uint8_t shift = uint8_t(int64_t(std::trunc(hue_factor * 255.0)) & 0xFF);
  Image out(in.height, in.width);
  for (size_t i = 0; i < in.pixels.size(); i += 3) {
    uint8_t hsv[3];
    rgb_to_hsv(&in.pixels[i], hsv);
    hsv[0] = uint8_t(hsv[0] + shift);
    hsv_to_rgb(hsv, &out.pixels[i]);
  }
  return out;
}

}  // namespace rtune::io
