// PIL's resampling (Pillow 13.0 src/libImaging/Resample.c and Geometry.c ImagingScaleAffine),
// reimplemented from the algorithm description: see resize.h. Pass order follows Pillow 13.0; Pillow
// <= 12.1 always ran the horizontal pass first, which can differ by 1 LSB when only the height shrinks.
#include "io/transforms/resize.h"

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

// A read-only window of an HWC image: rows of `w` pixels, `stride` bytes apart (a crop box needs
// no copy). `end` is one past the last readable byte of the buffer the window lies in: the vector
// loads of the horizontal pass read up to 15 bytes past a row's last tap and must stop short of it.
struct View {
  const uint8_t* data;
  int h, w;
  size_t stride;
  const uint8_t* end;
  const uint8_t* row(int y) const { return data + size_t(y) * stride; }
};

View view_of(const Image& in, int top, int left, int h, int w) {
  return {in.pixels.data() + (size_t(top) * size_t(in.width) + size_t(left)) * 3, h, w, in.row_bytes(),
          in.pixels.data() + in.pixels.size()};
}

View packed_view(const uint8_t* data, int h, int w) {
  return {data, h, w, size_t(w) * 3, data + size_t(h) * size_t(w) * 3};
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
inline void horizontal_pixel_pair_avx2(const uint8_t* p0, const uint8_t* p1, const int32_t* k, int groups,
                                       uint8_t* o0, uint8_t* o1) {
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
  std::memcpy(o0, &rgb0, 3);
  std::memcpy(o1, &rgb1, 3);
}
#endif

// Horizontal pass over input rows [y0, y0 + rows) into `out` (rows x out_w x 3, packed).
void horizontal(const View& in, int y0, int rows, int out_w, uint8_t* out) {
  Coeffs c = precompute(in.w, out_w);
  TapGroups g;
  if (kVectorHorizontal) g = tap_groups(c, out_w);
  const size_t ob = size_t(out_w) * 3;
  for (int y = 0; y < rows; y += 2) {
    const bool pair = y + 1 < rows;
    const uint8_t* line0 = in.row(y0 + y);
    const uint8_t* line1 = pair ? in.row(y0 + y + 1) : line0;  // an odd last row is done twice
    uint8_t* o0 = out + size_t(y) * ob;
    uint8_t* o1 = pair ? o0 + ob : o0;
    for (int xx = 0; xx < out_w; ++xx) {
      const size_t first = size_t(c.first[xx]) * 3;
#if defined(__AVX2__)
      if (line1 + first + size_t(g.groups[xx]) * 12 + 4 <= in.end) {
        horizontal_pixel_pair_avx2(line0 + first, line1 + first, &g.k[size_t(g.offset[xx]) * 16], g.groups[xx],
                                   o0 + xx * 3, o1 + xx * 3);
        continue;
      }
#endif
      const int32_t* k = &c.k[size_t(xx) * c.ksize];
      horizontal_pixel_scalar(line0 + first, k, c.count[xx], o0 + xx * 3);
      horizontal_pixel_scalar(line1 + first, k, c.count[xx], o1 + xx * 3);
    }
  }
}

// Vertical pass into `out` (out_h x in.w x 3, packed); `row_offset` is the input row that `in` row 0
// stands for.
void vertical(const View& in, const Coeffs& c, int row_offset, int out_h, uint8_t* out) {
  const size_t rb = size_t(in.w) * 3;
  std::vector<int32_t> acc(rb);
  for (int yy = 0; yy < out_h; ++yy) {
    const int32_t* k = &c.k[size_t(yy) * c.ksize];
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int y = 0; y < c.count[yy]; ++y) {
      const uint8_t* line = in.row(c.first[yy] - row_offset + y);
      const int32_t ky = k[y];
      for (size_t i = 0; i < rb; ++i) acc[i] += line[i] * ky;
    }
    uint8_t* o = out + size_t(yy) * rb;
    for (size_t i = 0; i < rb; ++i) o[i] = clip8(acc[i]);
  }
}

// `scratch` holds the intermediate image of a two-pass resize.
void resample_bilinear(const View& in, int out_h, int out_w, uint8_t* out, std::vector<uint8_t>& scratch) {
  bool need_h = out_w != in.w, need_v = out_h != in.h;
  Coeffs cv = precompute(in.h, out_h);
  if (!need_h) return vertical(in, cv, 0, out_h, out);
  if (!need_v) return horizontal(in, 0, in.h, out_w, out);
  // Pillow 13: when the height shrinks and the width does not, the vertical pass runs first (fewer
  // rows for the horizontal pass). The two orders round differently, so this is part of the result.
  if (out_w >= in.w && out_h < in.h) {
    scratch.resize(size_t(out_h) * size_t(in.w) * 3);
    vertical(in, cv, 0, out_h, scratch.data());
    return horizontal(packed_view(scratch.data(), out_h, in.w), 0, out_h, out_w, out);
  }
  // Otherwise horizontal first, over only the input rows the vertical pass reads.
  int first_row = cv.first[0];
  int last_row = cv.first[out_h - 1] + cv.count[out_h - 1];
  scratch.resize(size_t(last_row - first_row) * size_t(out_w) * 3);
  horizontal(in, first_row, last_row - first_row, out_w, scratch.data());
  vertical(packed_view(scratch.data(), last_row - first_row, out_w), cv, first_row, out_h, out);
}

// COORD of Geometry.c: truncation toward zero, except negatives map to -1.
inline int coord(double v) { return v < 0.0 ? -1 : int(v); }

void resample_nearest(const View& in, int out_h, int out_w, uint8_t* out) {
  double a0 = double(float(in.w)) / out_w, a4 = double(float(in.h)) / out_h;
  std::vector<int> xin(out_w, 0);
  int xmin = out_w, xmax = 0;
  double xo = 0.0 + a0 * 0.5;
  for (int x = 0; x < out_w; ++x, xo += a0) {
    int xi = coord(xo);
    if (xi >= 0 && xi < in.w) {
      xmax = x + 1;
      if (x < xmin) xmin = x;
      xin[x] = xi;
    }
  }
  std::memset(out, 0, size_t(out_h) * size_t(out_w) * 3);
  double yo = 0.0 + a4 * 0.5;
  for (int y = 0; y < out_h; ++y, yo += a4) {
    int yi = coord(yo);
    if (yi < 0 || yi >= in.h) continue;
    uint8_t* o = out + size_t(y) * size_t(out_w) * 3;
    for (int x = xmin; x < xmax; ++x) std::memcpy(o + size_t(x) * 3, in.row(yi) + size_t(xin[x]) * 3, 3);
  }
}

void resample(const View& in, int out_h, int out_w, Interp interp, uint8_t* out, std::vector<uint8_t>& scratch) {
  if (out_h == in.h && out_w == in.w) {
    for (int y = 0; y < in.h; ++y) std::memcpy(out + size_t(y) * size_t(in.w) * 3, in.row(y), size_t(in.w) * 3);
    return;
  }
  if (interp == Interp::bilinear) resample_bilinear(in, out_h, out_w, out, scratch);
  else resample_nearest(in, out_h, out_w, out);
}

}  // namespace

Image resize(const Image& in, int out_h, int out_w, Interp interp) {
  RTUNE_CHECK(out_h > 0 && out_w > 0, "resize: output size must be positive, got {}x{}", out_h, out_w);
  RTUNE_CHECK(!in.empty(), "resize: empty input image");
  if (out_h == in.height && out_w == in.width) return in;
  Image out(out_h, out_w);
  std::vector<uint8_t> scratch;
  resample(view_of(in, 0, 0, in.height, in.width), out_h, out_w, interp, out.pixels.data(), scratch);
  return out;
}

void resize_region_into(const Image& in, int top, int left, int height, int width, int out_h, int out_w,
                        Interp interp, uint8_t* out, std::vector<uint8_t>& scratch) {
  RTUNE_CHECK(out_h > 0 && out_w > 0, "resize: output size must be positive, got {}x{}", out_h, out_w);
  RTUNE_CHECK(height > 0 && width > 0 && top >= 0 && left >= 0 && top + height <= in.height && left + width <= in.width,
              "resize: region ({}, {}) {}x{} is not inside the {}x{} image", top, left, height, width, in.height,
              in.width);
  resample(view_of(in, top, left, height, width), out_h, out_w, interp, out, scratch);
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
