// The two separable passes of PIL's bilinear ImagingResample (Pillow 13.0 src/libImaging/Resample.c),
// reimplemented from the algorithm description, bit-exact: 22-bit fixed-point weights, each pass
// rounded and clipped to 8 bits. Internal to resize.cpp, which picks the pass order and boxes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace rtune::io::resample {

// Filter taps for one axis: for each output index, the first input index, the tap count, and
// ksize fixed-point weights. Mirrors precompute_coeffs + normalize_coeffs_8bpc (box = whole axis).
struct Coeffs {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> k;  // out_size * ksize
};

// The triangle filter's taps for an in_size -> out_size resize (support widened when shrinking).
Coeffs bilinear_coeffs(int in_size, int out_size);

// The input span [first, end) that outputs [lo, hi) of `c` read.
std::pair<int, int> taps_span(const Coeffs& c, int lo, int hi);

// A read-only source for the passes: logical pixel (y, x), for y in [0, h) and x in [0, w), of the
// image being resized lives at data + (y - oy) * stride + (x - ox) * 3, i.e. the buffer starts at
// logical (oy, ox) (a crop box, a partially decoded window or an intermediate holding some columns
// need no copy; only pixels under some output's taps are read). `end` is one past the buffer's last
// byte: vector loads stop short of it.
struct View {
  const uint8_t* data;
  int h, w;
  size_t stride;
  const uint8_t* end;
  int oy = 0, ox = 0;
  const uint8_t* at(int y, int x) const { return data + size_t(y - oy) * stride + size_t(x - ox) * 3; }
};

// A packed `rows` x `cols` intermediate holding logical rows [oy, oy + rows), columns [ox, ox + cols).
View packed_view(const uint8_t* data, int oy, int ox, int rows, int cols);

// Horizontal pass: input rows [y0, y0 + rows), output columns [x0, x1) of `c`'s output width, into
// `out` (rows x (x1 - x0) x 3, packed).
void horizontal(const View& in, int y0, int rows, const Coeffs& c, int x0, int x1, uint8_t* out);

// Vertical pass: output rows [y0, y1) of `c`'s output height over input columns [x0, x0 + cols), into
// `out` ((y1 - y0) x cols x 3, packed).
void vertical(const View& in, const Coeffs& c, int y0, int y1, int x0, int cols, uint8_t* out);

}  // namespace rtune::io::resample
