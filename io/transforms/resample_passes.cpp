// PIL's bilinear resampling passes: see resample_passes.h. With AVX2 both passes use vpmaddwd on
// int16 pixels (fused with the accumulation, vpdpwssd, where the CPU has VNNI). A 22-bit weight k
// is split as k = 2048 * hi + lo (hi and lo fit int16), so sum(p * k) = 2048 * sum(p * hi) +
// sum(p * lo): integer sums in int32, exact in any order, hence equal bit for bit to Pillow's
// tap-by-tap loop, which is the fallback (and the code without AVX2).
#include "io/transforms/resample_passes.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace rtune::io::resample {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS: 22 fractional bits
constexpr int32_t kHalf = 1 << (kPrecisionBits - 1);

inline uint8_t clip8(int32_t ss) {
  int32_t v = ss >> kPrecisionBits;  // arithmetic shift, as Pillow's table lookup on (ss >> 22)
  return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

double triangle(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

// The int16 pairs (a, b) of a vpmaddwd operand, as one int32.
inline int32_t int16_pair(int32_t a, int32_t b) { return int32_t(uint32_t(uint16_t(a)) | (uint32_t(uint16_t(b)) << 16)); }
inline int32_t weight_hi(int32_t k) { return k >> 11; }    // k = 2048 * hi + lo, lo in [0, 2048)
inline int32_t weight_lo(int32_t k) { return k & 2047; }

// One output pixel, tap by tap (Pillow's loop).
inline void horizontal_pixel_scalar(const uint8_t* p, const int32_t* k, int count, uint8_t* o) {
  int32_t s0 = kHalf, s1 = s0, s2 = s0;
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
// Horizontal weights re-laid for the vector loop: every output of the pass runs `groups` 4-tap
// groups (zero weights past its count, so the loop never mispredicts); output x's group g is 4 int32
// at k[4 * (x * groups + g)]: the int16 pairs (hi0, hi1), (lo0, lo1), (hi2, hi3), (lo2, lo3).
struct TapGroups {
  int groups = 0;
  std::vector<int32_t> k;
};

TapGroups tap_groups(const Coeffs& c, int x0, int x1) {
  TapGroups g;
  for (int xx = x0; xx < x1; ++xx) g.groups = std::max(g.groups, (c.count[xx] + 3) / 4);
  g.k.assign(size_t(x1 - x0) * size_t(g.groups) * 4, 0);
  for (int xx = x0; xx < x1; ++xx) {
    const int32_t* k = &c.k[size_t(xx) * c.ksize];
    auto tap = [&](int t) { return t < c.count[xx] ? k[t] : 0; };
    int32_t* o = &g.k[size_t(xx - x0) * size_t(g.groups) * 4];
    for (int t = 0; t < 4 * g.groups; t += 2, o += 2) {
      o[0] = int16_pair(weight_hi(tap(t)), weight_hi(tap(t + 1)));
      o[1] = int16_pair(weight_lo(tap(t)), weight_lo(tap(t + 1)));
    }
  }
  return g;
}

// acc + vpmaddwd(a, b): one fused instruction with AVX-VNNI / AVX512-VNNI.
inline __m256i madd_add(__m256i acc, __m256i a, __m256i b) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
  return _mm256_dpwssd_epi32(acc, a, b);
#elif defined(__AVXVNNI__)
  return _mm256_dpwssd_avx_epi32(acc, a, b);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

// One output pixel of rows a (low 128-bit lane) and b (high lane), rounded and shifted, not yet
// clipped: [R G B 0 | R G B 0]. Reads 12 * (groups - 1) + 16 bytes from each of pa and pb.
template <int kGroups>
inline __m256i horizontal_pixel_pair(const uint8_t* pa, const uint8_t* pb, const int32_t* k, int dyn_groups) {
  const int groups = kGroups > 0 ? kGroups : dyn_groups;
  // int16 pairs (p0, p1) per channel from taps 0, 1 (resp. 2, 3) of 4 packed RGB pixels.
  const __m256i taps01 = _mm256_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1,
                                          0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1);
  const __m256i taps23 = _mm256_setr_epi8(6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1,
                                          6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1);
  __m256i hi = _mm256_setzero_si256(), lo = _mm256_setzero_si256();
  for (int g = 0; g < groups; ++g, pa += 12, pb += 12, k += 4) {
    __m256i px = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pa))),
                                         _mm_loadu_si128(reinterpret_cast<const __m128i*>(pb)), 1);
    __m256i a = _mm256_shuffle_epi8(px, taps01), b = _mm256_shuffle_epi8(px, taps23);
    hi = madd_add(madd_add(hi, a, _mm256_set1_epi32(k[0])), b, _mm256_set1_epi32(k[2]));
    lo = madd_add(madd_add(lo, a, _mm256_set1_epi32(k[1])), b, _mm256_set1_epi32(k[3]));
  }
  __m256i s = _mm256_add_epi32(_mm256_slli_epi32(hi, 11), _mm256_add_epi32(lo, _mm256_set1_epi32(kHalf)));
  return _mm256_srai_epi32(s, kPrecisionBits);
}

// Outputs [x0, x_end) (a multiple of 4 of them) of rows ya (into o0) and yb (into o1), 4 per step.
template <int kGroups>
void horizontal_blocks(const View& in, int ya, int yb, const Coeffs& c, const TapGroups& g, int x0, int x_end, int x1,
                       uint8_t* o0, uint8_t* o1) {
  const __m256i compact = _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1,
                                           0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
  for (int xx = x0; xx < x_end; xx += 4) {
    __m256i s[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      const int f = c.first[xx + i];
      s[i] = horizontal_pixel_pair<kGroups>(in.at(ya, f), in.at(yb, f), &g.k[size_t(xx + i - x0) * g.groups * 4], g.groups);
    }
    // The saturating packs (per 128-bit lane) are clip8; then 12 bytes (4 pixels) per row.
    __m256i v = _mm256_packus_epi16(_mm256_packs_epi32(s[0], s[1]), _mm256_packs_epi32(s[2], s[3]));
    v = _mm256_shuffle_epi8(v, compact);
    __m128i va = _mm256_castsi256_si128(v), vb = _mm256_extracti128_si256(v, 1);
    uint8_t* qa = o0 + size_t(xx - x0) * 3;
    uint8_t* qb = o1 + size_t(xx - x0) * 3;
    if (xx + 6 <= x1) {  // 16-byte stores: the 4 spilled bytes belong to this row's next pixels, written later
      _mm_storeu_si128(reinterpret_cast<__m128i*>(qb), vb);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(qa), va);
    } else {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(qb), vb);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(qa), va);
      uint32_t tb = uint32_t(_mm_extract_epi32(vb, 2)), ta = uint32_t(_mm_extract_epi32(va, 2));
      std::memcpy(qb + 8, &tb, 4);
      std::memcpy(qa + 8, &ta, 4);
    }
  }
}

// 16 outputs of the vertical pass from the lines of `pairs` tap pairs (lines[2t], lines[2t + 1]),
// each at byte offset i, with per pair the weights (hi_t, hi_t+1), (lo_t, lo_t+1) in hilo.
inline __m128i vertical16(const uint8_t* const* lines, const int32_t* hilo, int pairs, size_t i) {
  __m256i hi0 = _mm256_setzero_si256(), lo0 = hi0, hi1 = hi0, lo1 = hi0;
  for (int t = 0; t < pairs; ++t, hilo += 2) {
    __m256i a = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lines[2 * t] + i)));
    __m256i b = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lines[2 * t + 1] + i)));
    __m256i ab0 = _mm256_unpacklo_epi16(a, b), ab1 = _mm256_unpackhi_epi16(a, b);  // per 128-bit lane
    __m256i kh = _mm256_set1_epi32(hilo[0]), kl = _mm256_set1_epi32(hilo[1]);
    hi0 = madd_add(hi0, ab0, kh);
    lo0 = madd_add(lo0, ab0, kl);
    hi1 = madd_add(hi1, ab1, kh);
    lo1 = madd_add(lo1, ab1, kl);
  }
  const __m256i half = _mm256_set1_epi32(kHalf);
  __m256i s0 = _mm256_srai_epi32(_mm256_add_epi32(_mm256_slli_epi32(hi0, 11), _mm256_add_epi32(lo0, half)), kPrecisionBits);
  __m256i s1 = _mm256_srai_epi32(_mm256_add_epi32(_mm256_slli_epi32(hi1, 11), _mm256_add_epi32(lo1, half)), kPrecisionBits);
  // The packs keep the lanes' order (unpacklo/hi split each lane), so outputs 0-7 end in qword 0
  // and 8-15 in qword 2; they saturate, which is clip8.
  __m256i v = _mm256_packus_epi16(_mm256_packs_epi32(s0, s1), _mm256_setzero_si256());
  return _mm256_castsi256_si128(_mm256_permute4x64_epi64(v, 0x08));
}
#endif

}  // namespace

Coeffs bilinear_coeffs(int in_size, int out_size) {
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

std::pair<int, int> taps_span(const Coeffs& c, int lo, int hi) {
  int first = c.first[lo], end = c.first[lo] + c.count[lo];
  for (int i = lo + 1; i < hi; ++i) end = std::max(end, c.first[i] + c.count[i]);
  return {first, end};
}

View packed_view(const uint8_t* data, int oy, int ox, int rows, int cols) {
  return {data, oy + rows, ox + cols, size_t(cols) * 3, data + size_t(rows) * size_t(cols) * 3, oy, ox};
}

void horizontal(const View& in, int y0, int rows, const Coeffs& c, int x0, int x1, uint8_t* out) {
  const size_t ob = size_t(x1 - x0) * 3;
#if defined(__AVX2__)
  const TapGroups g = tap_groups(c, x0, x1);
#endif
  for (int y = 0; y < rows; y += 2) {
    const bool pair = y + 1 < rows;
    const int ya = y0 + y, yb = pair ? ya + 1 : ya;  // an odd last row is done twice
    uint8_t* o0 = out + size_t(y) * ob;
    uint8_t* o1 = pair ? o0 + ob : o0;
    int xx = x0;
#if defined(__AVX2__)
    // The outputs whose loads stay inside the buffer (first[] never decreases), in blocks of 4.
    int x_end = x1;
    while (x_end > x0 && in.at(yb, c.first[x_end - 1]) + size_t(g.groups - 1) * 12 + 16 > in.end) --x_end;
    x_end = x0 + (x_end - x0) / 4 * 4;
    switch (g.groups) {
      case 1: horizontal_blocks<1>(in, ya, yb, c, g, x0, x_end, x1, o0, o1); break;
      case 2: horizontal_blocks<2>(in, ya, yb, c, g, x0, x_end, x1, o0, o1); break;
      default: horizontal_blocks<0>(in, ya, yb, c, g, x0, x_end, x1, o0, o1); break;
    }
    xx = x_end;
#endif
    for (; xx < x1; ++xx) {
      const int32_t* k = &c.k[size_t(xx) * c.ksize];
      horizontal_pixel_scalar(in.at(ya, c.first[xx]), k, c.count[xx], o0 + size_t(xx - x0) * 3);
      horizontal_pixel_scalar(in.at(yb, c.first[xx]), k, c.count[xx], o1 + size_t(xx - x0) * 3);
    }
  }
}

void vertical(const View& in, const Coeffs& c, int y0, int y1, int x0, int cols, uint8_t* out) {
  const size_t rb = size_t(cols) * 3;
  std::vector<int32_t> acc;  // the scalar loop's sums (with AVX2: only a row's last rb % 16 bytes)
#if defined(__AVX2__)
  std::vector<const uint8_t*> lines(size_t(c.ksize) + 1);
  std::vector<int32_t> hilo(size_t(c.ksize) + 1);
#endif
  for (int yy = y0; yy < y1; ++yy) {
    const int32_t* k = &c.k[size_t(yy) * c.ksize];
    const int n = c.count[yy];
    uint8_t* o = out + size_t(yy - y0) * rb;
    size_t i = 0;
#if defined(__AVX2__)
    const int pairs = (n + 1) / 2;  // an odd last tap pairs with a zero weight on the same line
    for (int t = 0; t < 2 * pairs; ++t) lines[t] = in.at(c.first[yy] + std::min(t, n - 1), x0);
    for (int t = 0; t < pairs; ++t) {
      int32_t k0 = k[2 * t], k1 = 2 * t + 1 < n ? k[2 * t + 1] : 0;
      hilo[2 * t] = int16_pair(weight_hi(k0), weight_hi(k1));
      hilo[2 * t + 1] = int16_pair(weight_lo(k0), weight_lo(k1));
    }
    for (; i + 16 <= rb; i += 16)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + i), vertical16(lines.data(), hilo.data(), pairs, i));
    if (i == rb) continue;
#endif
    acc.resize(rb);
    std::fill(acc.begin() + i, acc.end(), kHalf);
    for (int y = 0; y < n; ++y) {
      const uint8_t* line = in.at(c.first[yy] + y, x0);
      const int32_t ky = k[y];
      for (size_t j = i; j < rb; ++j) acc[j] += line[j] * ky;
    }
    for (size_t j = i; j < rb; ++j) o[j] = clip8(acc[j]);
  }
}

}  // namespace rtune::io::resample
