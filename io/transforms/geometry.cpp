// Crop, pad, flip and rotate as torchvision does them through PIL (see geometry.h). The rotation
// follows Pillow's Image.rotate (inverse affine matrix rounded to 15 decimals) and its C transform
// kernels in libImaging/Geometry.c: affine_fixed for nearest, the generic bilinear filter otherwise.
#include "io/transforms/geometry.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#if defined(__SSSE3__)
#include <immintrin.h>
#endif

#include "engine/error.h"

namespace rtune::io {

Image crop(const Image& in, int top, int left, int height, int width) {
  RTUNE_CHECK(height > 0 && width > 0, "crop: size must be positive, got {}x{}", height, width);
  Image out(height, width, 0);
  int y0 = std::max(top, 0), y1 = std::min(top + height, in.height);
  int x0 = std::max(left, 0), x1 = std::min(left + width, in.width);
  for (int y = y0; y < y1 && x0 < x1; ++y)
    std::memcpy(out.at(y - top, x0 - left), in.at(y, x0), size_t(x1 - x0) * 3);
  return out;
}

Image center_crop(const Image& in, int height, int width) {
  RTUNE_CHECK(height > 0 && width > 0, "center_crop: size must be positive, got {}x{}", height, width);
  const Image* src = &in;
  Image padded;
  if (width > in.width || height > in.height) {
    int l = width > in.width ? (width - in.width) / 2 : 0;
    int t = height > in.height ? (height - in.height) / 2 : 0;
    int r = width > in.width ? (width - in.width + 1) / 2 : 0;
    int b = height > in.height ? (height - in.height + 1) / 2 : 0;
    padded = pad(in, l, t, r, b);
    if (padded.width == width && padded.height == height) return padded;
    src = &padded;
  }
  CropBox b = center_crop_box(src->height, src->width, height, width);
  return crop(*src, b.top, b.left, height, width);
}

CropBox center_crop_box(int height, int width, int crop_height, int crop_width) {
  int top = int(std::nearbyint((height - crop_height) / 2.0));  // Python round(): half to even
  int left = int(std::nearbyint((width - crop_width) / 2.0));
  return {top, left, crop_height, crop_width};
}

namespace {

// Source index for a padded position i in [-before, n + after), numpy.pad semantics.
int pad_index(int i, int n, PadMode mode) {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case PadMode::edge: return i < 0 ? 0 : n - 1;
    case PadMode::reflect: {
      if (n == 1) return 0;
      int period = 2 * (n - 1);
      int m = ((i % period) + period) % period;
      return m < n ? m : period - m;
    }
    case PadMode::symmetric: {
      int period = 2 * n;
      int m = ((i % period) + period) % period;
      return m < n ? m : period - 1 - m;
    }
    case PadMode::constant: break;
  }
  return -1;
}

}  // namespace

Image pad(const Image& in, int left, int top, int right, int bottom, PadMode mode, std::array<uint8_t, 3> fill) {
  RTUNE_CHECK(left >= 0 && top >= 0 && right >= 0 && bottom >= 0, "pad: padding must be >= 0, got ({}, {}, {}, {})",
              left, top, right, bottom);
  RTUNE_CHECK(!in.empty(), "pad: empty input image");
  Image out(in.height + top + bottom, in.width + left + right);
  for (int y = 0; y < out.height; ++y) {
    int sy = pad_index(y - top, in.height, mode);
    for (int x = 0; x < out.width; ++x) {
      int sx = pad_index(x - left, in.width, mode);
      uint8_t* o = out.at(y, x);
      if (sy < 0 || sx < 0) std::memcpy(o, fill.data(), 3);
      else std::memcpy(o, in.at(sy, sx), 3);
    }
  }
  return out;
}

void reverse_pixels(const uint8_t* src, int width, uint8_t* dst) {
  int j = 0;  // destination pixel j takes source pixel width - 1 - j
#if defined(__SSSE3__)
  // 5 pixels per step: a 16-byte load starting one byte before the 5 source pixels (inside the row
  // while j + 6 <= width), reversed by a shuffle; the 16th byte stored lands on pixel j + 5, written
  // by the next step.
  const __m128i reverse5 = _mm_setr_epi8(13, 14, 15, 10, 11, 12, 7, 8, 9, 4, 5, 6, 1, 2, 3, -1);
  for (; j + 6 <= width; j += 5) {
    const uint8_t* s = src + size_t(width - 5 - j) * 3 - 1;
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + size_t(j) * 3), _mm_shuffle_epi8(v, reverse5));
  }
#endif
  for (; j < width; ++j) std::memcpy(dst + size_t(j) * 3, src + size_t(width - 1 - j) * 3, 3);
}

Image hflip(const Image& in) {
  Image out(in.height, in.width);
  for (int y = 0; y < in.height; ++y) reverse_pixels(in.at(y, 0), in.width, out.at(y, 0));
  return out;
}

Image vflip(const Image& in) {
  Image out(in.height, in.width);
  for (int y = 0; y < in.height; ++y) std::memcpy(out.at(y, 0), in.at(in.height - 1 - y, 0), in.row_bytes());
  return out;
}

namespace {

// PIL transpose ROTATE_90 (counter-clockwise) / ROTATE_270 (clockwise); output is width x height.
Image rotate90(const Image& in, bool ccw) {
  Image out(in.width, in.height);
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x) {
      const uint8_t* s = ccw ? in.at(x, in.width - 1 - y) : in.at(in.height - 1 - x, y);
      std::memcpy(out.at(y, x), s, 3);
    }
  return out;
}

// Python's round(v, 15): correctly rounded to 15 decimals, read back. printf rounds the exact binary
// value the same way CPython's dtoa does.
double round15(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15f", v);
  return std::strtod(buf, nullptr);
}

inline int coord(double v) { return v < 0.0 ? -1 : int(v); }
inline int floor_int(double v) { return v < 0.0 ? int(std::floor(v)) : int(v); }

// Pillow's affine_fixed: nearest neighbour with 16.16 fixed-point stepping.
void affine_nearest_fixed(const Image& in, Image& out, const double a[6]) {
  auto fix = [](double v) { return floor_int(v * 65536.0 + 0.5); };
  int a0 = fix(a[0]), a1 = fix(a[1]), a3 = fix(a[3]), a4 = fix(a[4]);
  int a2 = fix(a[2] + a[0] * 0.5 + a[1] * 0.5);
  int a5 = fix(a[5] + a[3] * 0.5 + a[4] * 0.5);
  for (int y = 0; y < out.height; ++y, a2 += a1, a5 += a4) {
    int xx = a2, yy = a5;
    for (int x = 0; x < out.width; ++x, xx += a0, yy += a3) {
      int xin = xx >> 16, yin = yy >> 16;
      if (xin >= 0 && xin < in.width && yin >= 0 && yin < in.height) std::memcpy(out.at(y, x), in.at(yin, xin), 3);
    }
  }
}

// Pillow's floating-point nearest affine (used when the fixed-point range would overflow).
void affine_nearest_float(const Image& in, Image& out, const double a[6]) {
  double xo = a[2] + a[1] * 0.5 + a[0] * 0.5, yo = a[5] + a[4] * 0.5 + a[3] * 0.5;
  for (int y = 0; y < out.height; ++y, xo += a[1], yo += a[4]) {
    double xx = xo, yy = yo;
    for (int x = 0; x < out.width; ++x, xx += a[0], yy += a[3]) {
      int xin = coord(xx), yin = coord(yy);
      if (xin >= 0 && xin < in.width && yin >= 0 && yin < in.height) std::memcpy(out.at(y, x), in.at(yin, xin), 3);
    }
  }
}

// Pillow's generic transform with bilinear_filter32RGB: sample at the pixel centre, edge-clamped
// neighbours, each channel truncated to uint8.
void affine_bilinear(const Image& in, Image& out, const double a[6]) {
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      double xs = x + 0.5, ys = y + 0.5;
      double xin = a[0] * xs + a[1] * ys + a[2];
      double yin = a[3] * xs + a[4] * ys + a[5];
      if (xin < 0.0 || xin >= in.width || yin < 0.0 || yin >= in.height) continue;
      xin -= 0.5;
      yin -= 0.5;
      int xi = floor_int(xin), yi = floor_int(yin);
      double dx = xin - xi, dy = yin - yi;
      auto xclip = [&](int v) { return v < 0 ? 0 : v < in.width ? v : in.width - 1; };
      auto yclip = [&](int v) { return v < 0 ? 0 : v < in.height ? v : in.height - 1; };
      int x0 = xclip(xi), x1 = xclip(xi + 1);
      const uint8_t* r0 = in.at(yclip(yi), 0);
      const uint8_t* r1 = (yi + 1 >= 0 && yi + 1 < in.height) ? in.at(yi + 1, 0) : nullptr;
      uint8_t* o = out.at(y, x);
      for (int c = 0; c < 3; ++c) {
        int p00 = r0[x0 * 3 + c], p01 = r0[x1 * 3 + c];
        double v1 = p00 + (p01 - p00) * dx;
        double v2 = v1;
        if (r1) {
          int p10 = r1[x0 * 3 + c], p11 = r1[x1 * 3 + c];
          v2 = p10 + (p11 - p10) * dx;
        }
        v1 = v1 + (v2 - v1) * dy;
        o[c] = uint8_t(v1);
      }
    }
  }
}

bool fits_fixed(const double a[6], int x, int y) {
  return std::fabs(x * a[0] + y * a[1] + a[2]) < 32768.0 && std::fabs(x * a[3] + y * a[4] + a[5]) < 32768.0;
}

}  // namespace

Image rotate(const Image& in, double degrees, Interp interp, std::array<uint8_t, 3> fill) {
  RTUNE_CHECK(!in.empty(), "rotate: empty input image");
  RTUNE_CHECK(std::isfinite(degrees), "rotate: angle must be finite, got {}", degrees);
  double angle = std::fmod(degrees, 360.0);  // Python's %: result in [0, 360)
  if (angle < 0) angle += 360.0;
  if (angle == 360.0) angle = 0.0;
  if (angle == 0.0) return in;
  if (angle == 180.0) return vflip(hflip(in));
  if ((angle == 90.0 || angle == 270.0) && in.width == in.height) return rotate90(in, angle == 90.0);

  const double w = in.width, h = in.height;
  const double cx = w / 2, cy = h / 2;
  const double rad = -(angle * (M_PI / 180.0));  // Python: -math.radians(angle)
  double a[6] = {round15(std::cos(rad)), round15(std::sin(rad)), 0.0, round15(-std::sin(rad)), round15(std::cos(rad)), 0.0};
  // matrix[2], matrix[5] = transform(-cx, -cy); then += centre.
  double tx = a[0] * -cx + a[1] * -cy + a[2];
  double ty = a[3] * -cx + a[4] * -cy + a[5];
  a[2] = tx + cx;
  a[5] = ty + cy;

  Image out(in.height, in.width);
  for (size_t i = 0; i < out.pixels.size(); i += 3) std::memcpy(&out.pixels[i], fill.data(), 3);
  if (interp == Interp::bilinear) {
    affine_bilinear(in, out, a);
  } else if (fits_fixed(a, 0, 0) && fits_fixed(a, out.width, out.height) && fits_fixed(a, 0, out.height) &&
             fits_fixed(a, out.width, 0)) {
    affine_nearest_fixed(in, out, a);
  } else {
    affine_nearest_float(in, out, a);
  }
  return out;
}

}  // namespace rtune::io
