// PIL's resampling (Pillow 13.0 src/libImaging/Resample.c and Geometry.c ImagingScaleAffine),
// reimplemented from the algorithm description: see resize.h. Pass order follows Pillow 13.0; Pillow
// <= 12.1 always ran the horizontal pass first, which can differ by 1 LSB when only the height shrinks.
#include "io/transforms/resize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "engine/error.h"

namespace rtune::io {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS: 22 fractional bits

inline uint8_t clip8(int32_t ss) {
  int32_t v = ss >> kPrecisionBits;  // arithmetic shift, as Pillow's table lookup on (ss >> 22)
  return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

double triangle(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Filter taps for one axis: for each output index, the first input index, the tap count, and
// ksize fixed-point weights. Mirrors precompute_coeffs + normalize_coeffs_8bpc (box = whole axis).
struct Coeffs {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;  // out_size * ksize
};

Coeffs precompute(int in_size, int out_size) {
  const double in0 = 0.0, in1 = double(float(in_size));
  double scale = (in1 - in0) / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = 1.0 * filterscale;  // bilinear support 1, widened when shrinking
  Coeffs c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.k.assign(size_t(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  double inv_filterscale = 1.0 / filterscale;
  for (int xx = 0; xx < out_size; ++xx) {
    double center = in0 + (xx + 0.5) * scale;
    double ww = 0.0;
    int xmin = int(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; ++x) {
      double v = triangle((x + xmin - center + 0.5) * inv_filterscale);
      w[x] = v;
      ww += v;
    }
    for (int x = 0; x < xmax; ++x) {
      double v = ww != 0.0 ? w[x] / ww : w[x];
      c.k[size_t(xx) * c.ksize + x] = v < 0 ? int32_t(-0.5 + v * (1 << kPrecisionBits))
                                            : int32_t(0.5 + v * (1 << kPrecisionBits));
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

// A read-only source for the passes: logical pixel (y, x), for y in [0, h) and x in [0, w), of the
// image being resized lives at data + (y - oy) * stride + (x - ox) * 3, i.e. the buffer starts at
// logical (oy, ox) (a crop box, a partially decoded window or an intermediate holding some columns
// need no copy; only pixels under some output's taps are read). `end` is one past the buffer's last
// byte: the vector loads of the horizontal pass read up to 15 bytes past a row's last tap.
struct View {
  const uint8_t* data;
  int h, w;
  size_t stride;
  const uint8_t* end;
  int oy = 0, ox = 0;
  const uint8_t* at(int y, int x) const { return data + size_t(y - oy) * stride + size_t(x - ox) * 3; }
};

// A packed intermediate: `rows` x `cols` pixels holding logical rows [oy, oy + rows) and columns
// [ox, ox + cols).
View packed_view(const uint8_t* data, int oy, int ox, int rows, int cols) {
  return {data, oy + rows, ox + cols, size_t(cols) * 3, data + size_t(rows) * size_t(cols) * 3, oy, ox};
}

// With AVX2 the horizontal pass does 4 taps (12 bytes, 4 RGB pixels) per step in two 8-lane int32
// vectors laid out [R G B 0 | R G B 0]. Integer sums are exact in any order, so this equals Pillow's
// tap-by-tap loop bit for bit. Without AVX2 (and where a 16-byte load would pass the end of the
// buffer) the pixel takes Pillow's loop.
#if defined(__AVX2__)
constexpr bool kVectorHorizontal = true;
#else
constexpr bool kVectorHorizontal = false;
#endif

// Coeffs re-laid for the vector loop: for output x, groups[x] blocks of 16 int32 from
// k[16 * offset[x]], each holding 4 taps with every weight repeated for R, G, B and 0 in the fourth
// lane (and 0 for taps past count).
struct TapGroups {
  std::vector<int> offset, groups;
  std::vector<int32_t> k;
};

TapGroups tap_groups(const Coeffs& c, int out_size) {
  TapGroups g;
  g.offset.resize(out_size);
  g.groups.resize(out_size);
  for (int xx = 0; xx < out_size; ++xx) {
    g.offset[xx] = int(g.k.size() / 16);
    g.groups[xx] = (c.count[xx] + 3) / 4;
    for (int t = 0; t < c.count[xx]; t += 4) {
      int32_t v[16] = {};
      for (int j = 0; j < 4 && t + j < c.count[xx]; ++j)
        for (int ch = 0; ch < 3; ++ch) v[j * 4 + ch] = c.k[size_t(xx) * c.ksize + size_t(t + j)];
      g.k.insert(g.k.end(), v, v + 16);
    }
  }
  return g;
}

// One output pixel, tap by tap (Pillow's loop).
inline void horizontal_pixel_scalar(const uint8_t* p, const int32_t* k, int count, uint8_t* o) {
  int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
  for (int x = 0; x < count; ++x, p += 3) {
    s0 += p[0] * k[x];
    s1 += p[1] * k[x];
    s2 += p[2] * k[x];
  }
  o[0] = clip8(s0);
  o[1] = clip8(s1);
  o[2] = clip8(s2);
}

#if defined(__AVX2__)
// Output pixel x of two rows at once (they share x's weights): `groups` 4-tap blocks from each of
// p0 and p1 (12 * (groups - 1) + 16 bytes read from each), results to o0 and o1.
// With `spill`, 4 bytes are stored to each output (the fourth is the next pixel's, written after).
inline void horizontal_pixel_pair_avx2(const uint8_t* p0, const uint8_t* p1, const int32_t* k, int groups,
                                       uint8_t* o0, uint8_t* o1, bool spill) {
  const __m128i spread = _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1);
  __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();  // rows 0 and 1: [taps 0,1 | taps 2,3]
  for (int t = 0; t < groups; ++t, p0 += 12, p1 += 12, k += 16) {
    __m256i w01 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k));
    __m256i w23 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k + 8));
    __m128i a = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p0)), spread);
    __m128i b = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p1)), spread);
    acc0 = _mm256_add_epi32(acc0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(a), w01));
    acc0 = _mm256_add_epi32(acc0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_unpackhi_epi64(a, a)), w23));
    acc1 = _mm256_add_epi32(acc1, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(b), w01));
    acc1 = _mm256_add_epi32(acc1, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_unpackhi_epi64(b, b)), w23));
  }
  // [row 0 half sums | row 1 half sums]: add the halves across the two accumulators in one step.
  __m256i s = _mm256_add_epi32(_mm256_permute2x128_si256(acc0, acc1, 0x20), _mm256_permute2x128_si256(acc0, acc1, 0x31));
  s = _mm256_srai_epi32(_mm256_add_epi32(s, _mm256_set1_epi32(1 << (kPrecisionBits - 1))), kPrecisionBits);
  s = _mm256_packus_epi16(_mm256_packs_epi32(s, s), s);  // saturating packs per 128-bit lane: clip8
  uint32_t rgb0 = uint32_t(_mm256_extract_epi32(s, 0)), rgb1 = uint32_t(_mm256_extract_epi32(s, 4));
  if (spill) {
    std::memcpy(o0, &rgb0, 4);
    std::memcpy(o1, &rgb1, 4);
  } else {
    std::memcpy(o0, &rgb0, 3);
    std::memcpy(o1, &rgb1, 3);
  }
}
#endif

// Horizontal pass: input rows [y0, y0 + rows), output columns [x0, x1) of `c`'s output width, into
// `out` (rows x (x1 - x0) x 3, packed).
void horizontal(const View& in, int y0, int rows, const Coeffs& c, const TapGroups& g, int x0, int x1, uint8_t* out) {
  const size_t ob = size_t(x1 - x0) * 3;
  for (int y = 0; y < rows; y += 2) {
    const bool pair = y + 1 < rows;
    const int ya = y0 + y, yb = pair ? ya + 1 : ya;  // an odd last row is done twice
    uint8_t* o0 = out + size_t(y) * ob;
    uint8_t* o1 = pair ? o0 + ob : o0;
    for (int xx = x0; xx < x1; ++xx) {
      const uint8_t* p0 = in.at(ya, c.first[xx]);
      const uint8_t* p1 = in.at(yb, c.first[xx]);
      uint8_t* q0 = o0 + size_t(xx - x0) * 3;
      uint8_t* q1 = o1 + size_t(xx - x0) * 3;
#if defined(__AVX2__)
      if (p1 + size_t(g.groups[xx]) * 12 + 4 <= in.end) {
        horizontal_pixel_pair_avx2(p0, p1, &g.k[size_t(g.offset[xx]) * 16], g.groups[xx], q0, q1, xx + 1 < x1);
        continue;
      }
#endif
      const int32_t* k = &c.k[size_t(xx) * c.ksize];
      horizontal_pixel_scalar(p0, k, c.count[xx], q0);
      horizontal_pixel_scalar(p1, k, c.count[xx], q1);
    }
  }
}

// Vertical pass: output rows [y0, y1) of `c`'s output height over input columns [x0, x0 + cols), into
// `out` ((y1 - y0) x cols x 3, packed).
void vertical(const View& in, const Coeffs& c, int y0, int y1, int x0, int cols, uint8_t* out) {
  const size_t rb = size_t(cols) * 3;
  std::vector<int32_t> acc(rb);
  for (int yy = y0; yy < y1; ++yy) {
    const int32_t* k = &c.k[size_t(yy) * c.ksize];
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int y = 0; y < c.count[yy]; ++y) {
      const uint8_t* line = in.at(c.first[yy] + y, x0);
      const int32_t ky = k[y];
      for (size_t i = 0; i < rb; ++i) acc[i] += line[i] * ky;
    }
    uint8_t* o = out + size_t(yy - y0) * rb;
    for (size_t i = 0; i < rb; ++i) o[i] = clip8(acc[i]);
  }
}

// The input span [first, end) that outputs [lo, hi) of `c` read.
std::pair<int, int> taps_span(const Coeffs& c, int lo, int hi) {
  int first = c.first[lo], end = c.first[lo] + c.count[lo];
  for (int i = lo + 1; i < hi; ++i) end = std::max(end, c.first[i] + c.count[i]);
  return {first, end};
}

// Output box `b` of the in.h x in.w -> out_h x out_w resize; `scratch` holds the intermediate pass.
void resample_bilinear(const View& in, int out_h, int out_w, const CropBox& b, uint8_t* out, std::vector<uint8_t>& scratch) {
  const bool need_h = out_w != in.w, need_v = out_h != in.h;
  const int right = b.left + b.width, bottom = b.top + b.height;
  Coeffs ch, cv;
  TapGroups g;
  if (need_h) {
    ch = precompute(in.w, out_w);
    if (kVectorHorizontal) g = tap_groups(ch, out_w);
  }
  if (need_v) cv = precompute(in.h, out_h);
  if (!need_h) return vertical(in, cv, b.top, bottom, b.left, b.width, out);
  if (!need_v) return horizontal(in, b.top, b.height, ch, g, b.left, right, out);
  // Pillow 13: when the height shrinks and the width does not, the vertical pass runs first (fewer
  // rows for the horizontal pass). The two orders round differently, so this is part of the result.
  if (out_w >= in.w && out_h < in.h) {
    auto [c0, c1] = taps_span(ch, b.left, right);  // the input columns the box's outputs read
    scratch.resize(size_t(b.height) * size_t(c1 - c0) * 3 + 16);
    vertical(in, cv, b.top, bottom, c0, c1 - c0, scratch.data());
    View mid = packed_view(scratch.data(), b.top, c0, b.height, c1 - c0);
    mid.end = scratch.data() + scratch.size();  // 16 bytes of slack: vector loads at the last row
    return horizontal(mid, b.top, b.height, ch, g, b.left, right, out);
  }
  // Otherwise horizontal first, over only the input rows the vertical pass reads.
  auto [r0, r1] = taps_span(cv, b.top, bottom);
  scratch.resize(size_t(r1 - r0) * size_t(b.width) * 3);
  horizontal(in, r0, r1 - r0, ch, g, b.left, right, scratch.data());
  vertical(packed_view(scratch.data(), r0, b.left, r1 - r0, b.width), cv, b.top, bottom, b.left, b.width, out);
}

// COORD of Geometry.c: truncation toward zero, except negatives map to -1.
inline int coord(double v) { return v < 0.0 ? -1 : int(v); }

// For each output index of an in_size -> out_size nearest resize, the input index, or -1 (outside).
std::vector<int> nearest_sources(int in_size, int out_size) {
  const double a = double(float(in_size)) / out_size;
  std::vector<int> src(out_size, -1);
  double xo = 0.0 + a * 0.5;
  for (int x = 0; x < out_size; ++x, xo += a) {
    int xi = coord(xo);
    if (xi >= 0 && xi < in_size) src[x] = xi;
  }
  return src;
}

void resample_nearest(const View& in, int out_h, int out_w, const CropBox& b, uint8_t* out) {
  std::vector<int> xin = nearest_sources(in.w, out_w), yin = nearest_sources(in.h, out_h);
  const size_t ob = size_t(b.width) * 3;
  std::memset(out, 0, size_t(b.height) * ob);
  for (int y = b.top; y < b.top + b.height; ++y) {
    if (yin[y] < 0) continue;
    uint8_t* o = out + size_t(y - b.top) * ob;
    for (int x = b.left; x < b.left + b.width; ++x)
      if (xin[x] >= 0) std::memcpy(o + size_t(x - b.left) * 3, in.at(yin[y], xin[x]), 3);
  }
}

void resample(const View& in, int out_h, int out_w, const CropBox& b, Interp interp, uint8_t* out,
              std::vector<uint8_t>& scratch) {
  if (out_h == in.h && out_w == in.w) {
    for (int y = 0; y < b.height; ++y)
      std::memcpy(out + size_t(y) * size_t(b.width) * 3, in.at(b.top + y, b.left), size_t(b.width) * 3);
    return;
  }
  if (interp == Interp::bilinear) resample_bilinear(in, out_h, out_w, b, out, scratch);
  else resample_nearest(in, out_h, out_w, b, out);
}

bool inside(const CropBox& b, int h, int w) {
  return b.height > 0 && b.width > 0 && b.top >= 0 && b.left >= 0 && b.top + b.height <= h && b.left + b.width <= w;
}

}  // namespace

CropBox resize_source_box(int in_h, int in_w, int out_h, int out_w, const CropBox& out_box, Interp interp) {
  RTUNE_CHECK(in_h > 0 && in_w > 0 && out_h > 0 && out_w > 0, "resize: sizes must be positive, got {}x{} -> {}x{}",
              in_h, in_w, out_h, out_w);
  RTUNE_CHECK(inside(out_box, out_h, out_w), "resize: output box ({}, {}) {}x{} is not inside the {}x{} output",
              out_box.top, out_box.left, out_box.height, out_box.width, out_h, out_w);
  auto axis = [&](int in_size, int out_size, int lo, int hi) -> std::pair<int, int> {
    if (in_size == out_size) return {lo, hi};
    if (interp == Interp::bilinear) return taps_span(precompute(in_size, out_size), lo, hi);
    std::vector<int> src = nearest_sources(in_size, out_size);
    int first = in_size, end = 0;
    for (int i = lo; i < hi; ++i)
      if (src[i] >= 0) first = std::min(first, src[i]), end = std::max(end, src[i] + 1);
    return first < end ? std::pair{first, end} : std::pair{0, 1};
  };
  auto [y0, y1] = axis(in_h, out_h, out_box.top, out_box.top + out_box.height);
  auto [x0, x1] = axis(in_w, out_w, out_box.left, out_box.left + out_box.width);
  return {y0, x0, y1 - y0, x1 - x0};
}

void resize_into(const Image& pixels, int pixels_top, int pixels_left, const CropBox& region, int out_h, int out_w,
                 const CropBox& out_box, Interp interp, uint8_t* out, std::vector<uint8_t>& scratch) {
  RTUNE_CHECK(region.height > 0 && region.width > 0, "resize: region must be non-empty, got {}x{}", region.height,
              region.width);
  CropBox need = resize_source_box(region.height, region.width, out_h, out_w, out_box, interp);
  need.top += region.top, need.left += region.left;
  RTUNE_CHECK(need.top >= pixels_top && need.left >= pixels_left &&
                  need.top + need.height <= pixels_top + pixels.height && need.left + need.width <= pixels_left + pixels.width,
              "resize: region ({}, {}) {}x{} needs pixels ({}, {}) {}x{}, which the {}x{} image at ({}, {}) does not hold",
              region.top, region.left, region.height, region.width, need.top, need.left, need.height, need.width,
              pixels.height, pixels.width, pixels_top, pixels_left);
  View v{pixels.pixels.data(), region.height, region.width, pixels.row_bytes(), pixels.pixels.data() + pixels.pixels.size(),
         pixels_top - region.top, pixels_left - region.left};
  resample(v, out_h, out_w, out_box, interp, out, scratch);
}

Image resize(const Image& in, int out_h, int out_w, Interp interp) {
  RTUNE_CHECK(out_h > 0 && out_w > 0, "resize: output size must be positive, got {}x{}", out_h, out_w);
  RTUNE_CHECK(!in.empty(), "resize: empty input image");
  if (out_h == in.height && out_w == in.width) return in;
  Image out(out_h, out_w);
  std::vector<uint8_t> scratch;
  resize_into(in, 0, 0, {0, 0, in.height, in.width}, out_h, out_w, {0, 0, out_h, out_w}, interp, out.pixels.data(),
              scratch);
  return out;
}

std::pair<int, int> shorter_side_size(int height, int width, int size) {
  RTUNE_CHECK(size > 0, "resize: size must be positive, got {}", size);
  bool w_short = width <= height;
  int64_t shorter = w_short ? width : height, longer = w_short ? height : width;
  // Python: int(size * long / short), a true division of exact integers, then truncation.
  int new_long = int(double(int64_t(size) * longer) / double(shorter));
  return w_short ? std::pair{new_long, size} : std::pair{size, new_long};
}

Image resize_shorter(const Image& in, int size, Interp interp) {
  auto [h, w] = shorter_side_size(in.height, in.width, size);
  return resize(in, h, w, interp);
}

}  // namespace rtune::io
