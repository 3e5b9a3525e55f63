// PIL's resampling (Pillow 13.0 src/libImaging/Resample.c and Geometry.c ImagingScaleAffine),
// reimplemented from the algorithm description: see resize.h. Pass order follows Pillow 13.0; Pillow
// <= 12.1 always ran the horizontal pass first, which can differ by 1 LSB when the height shrinks.
#include "io/transforms/resize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/error.h"
#include "io/transforms/resample_passes.h"

namespace rtune::io {

namespace {

using resample::Coeffs;
using resample::View;

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

// How one axis of a resize maps outputs to inputs: the bilinear taps or the nearest sources (neither
// when the size is kept). Computed once per resize, for the source box and the passes.
struct AxisMap {
  int in = 0, out = 0;
  Interp interp = Interp::bilinear;
  Coeffs taps;
  std::vector<int> nearest;
  bool kept() const { return in == out; }
};

AxisMap axis_map(int in, int out, Interp interp) {
  AxisMap m{in, out, interp, {}, {}};
  if (m.kept()) return m;
  if (interp == Interp::bilinear) m.taps = resample::bilinear_coeffs(in, out);
  else m.nearest = nearest_sources(in, out);
  return m;
}

// The input span [first, end) that outputs [lo, hi) read.
std::pair<int, int> source_span(const AxisMap& m, int lo, int hi) {
  if (m.kept()) return {lo, hi};
  if (m.interp == Interp::bilinear) return resample::taps_span(m.taps, lo, hi);
  int first = m.in, end = 0;
  for (int i = lo; i < hi; ++i)
    if (m.nearest[i] >= 0) first = std::min(first, m.nearest[i]), end = std::max(end, m.nearest[i] + 1);
  return first < end ? std::pair{first, end} : std::pair{0, 1};
}

// Pillow 13.0's pass order (see resample_bilinear); both axes change.
bool vertical_first(const AxisMap& rows, const AxisMap& cols) {
  return rows.out < rows.in && rows.in - rows.out > 2 * (cols.in - cols.out);
}

// Output box `b` of the resize `rows` x `cols` maps describe; `scratch` holds the intermediate pass.
void resample_bilinear(const View& in, const AxisMap& rows, const AxisMap& cols, const CropBox& b, uint8_t* out,
                       std::vector<uint8_t>& scratch) {
  const Coeffs &ch = cols.taps, &cv = rows.taps;
  const int right = b.left + b.width, bottom = b.top + b.height;
  if (cols.kept()) return resample::vertical(in, cv, b.top, bottom, b.left, b.width, out);
  if (rows.kept()) return resample::horizontal(in, b.top, b.height, ch, b.left, right, out);
  // Pillow 13.0 runs the vertical pass first when the height shrinks by more than twice what the width
  // shrinks (always when the width grows): in_h - out_h > 2 (in_w - out_w). The two orders round
  // differently, so this is part of the result (the rule agrees with Pillow 13.0 on 9,592 size pairs:
  // docs/random-resized-crop-small-images.md).
  if (vertical_first(rows, cols)) {
    auto [c0, c1] = resample::taps_span(ch, b.left, right);  // the input columns the box's outputs read
    scratch.resize(size_t(b.height) * size_t(c1 - c0) * 3 + 16);
    resample::vertical(in, cv, b.top, bottom, c0, c1 - c0, scratch.data());
    View mid = resample::packed_view(scratch.data(), b.top, c0, b.height, c1 - c0);
    mid.end = scratch.data() + scratch.size();  // 16 bytes of slack: vector loads at the last row
    return resample::horizontal(mid, b.top, b.height, ch, b.left, right, out);
  }
  // Otherwise horizontal first, over only the input rows the vertical pass reads.
  auto [r0, r1] = resample::taps_span(cv, b.top, bottom);
  scratch.resize(size_t(r1 - r0) * size_t(b.width) * 3);
  resample::horizontal(in, r0, r1 - r0, ch, b.left, right, scratch.data());
  resample::vertical(resample::packed_view(scratch.data(), r0, b.left, r1 - r0, b.width), cv, b.top, bottom, b.left,
                     b.width, out);
}

void resample_nearest(const View& in, const AxisMap& rows, const AxisMap& cols, const CropBox& b, uint8_t* out) {
  const size_t ob = size_t(b.width) * 3;
  std::memset(out, 0, size_t(b.height) * ob);
  for (int y = b.top; y < b.top + b.height; ++y) {
    const int sy = rows.kept() ? y : rows.nearest[y];
    if (sy < 0) continue;
    uint8_t* o = out + size_t(y - b.top) * ob;
    for (int x = b.left; x < b.left + b.width; ++x) {
      const int sx = cols.kept() ? x : cols.nearest[x];
      if (sx >= 0) std::memcpy(o + size_t(x - b.left) * 3, in.at(sy, sx), 3);
    }
  }
}

void resample_box(const View& in, const AxisMap& rows, const AxisMap& cols, const CropBox& b, uint8_t* out,
              std::vector<uint8_t>& scratch) {
  if (rows.kept() && cols.kept()) {
    for (int y = 0; y < b.height; ++y)
      std::memcpy(out + size_t(y) * size_t(b.width) * 3, in.at(b.top + y, b.left), size_t(b.width) * 3);
    return;
  }
  if (rows.interp == Interp::bilinear) resample_bilinear(in, rows, cols, b, out, scratch);
  else resample_nearest(in, rows, cols, b, out);
}

bool inside(const CropBox& b, int h, int w) {
  return b.height > 0 && b.width > 0 && b.top >= 0 && b.left >= 0 && b.top + b.height <= h && b.left + b.width <= w;
}

// The source box of `out_box` under the maps.
CropBox source_box(const AxisMap& rows, const AxisMap& cols, const CropBox& out_box) {
  auto [y0, y1] = source_span(rows, out_box.top, out_box.top + out_box.height);
  auto [x0, x1] = source_span(cols, out_box.left, out_box.left + out_box.width);
  return {y0, x0, y1 - y0, x1 - x0};
}

void check_sizes(int in_h, int in_w, int out_h, int out_w, const CropBox& out_box) {
  RTUNE_CHECK(in_h > 0 && in_w > 0 && out_h > 0 && out_w > 0, "resize: sizes must be positive, got {}x{} -> {}x{}",
              in_h, in_w, out_h, out_w);
  RTUNE_CHECK(inside(out_box, out_h, out_w), "resize: output box ({}, {}) {}x{} is not inside the {}x{} output",
              out_box.top, out_box.left, out_box.height, out_box.width, out_h, out_w);
}

}  // namespace

CropBox resize_source_box(int in_h, int in_w, int out_h, int out_w, const CropBox& out_box, Interp interp) {
  check_sizes(in_h, in_w, out_h, out_w, out_box);
  return source_box(axis_map(in_h, out_h, interp), axis_map(in_w, out_w, interp), out_box);
}

void resize_into(ImageView pixels, int pixels_top, int pixels_left, const CropBox& region, int out_h, int out_w,
                 const CropBox& out_box, Interp interp, uint8_t* out, std::vector<uint8_t>& scratch) {
  RTUNE_CHECK(region.height > 0 && region.width > 0, "resize: region must be non-empty, got {}x{}", region.height,
              region.width);
  check_sizes(region.height, region.width, out_h, out_w, out_box);
  const AxisMap rows = axis_map(region.height, out_h, interp), cols = axis_map(region.width, out_w, interp);
  CropBox need = source_box(rows, cols, out_box);
  need.top += region.top, need.left += region.left;
  RTUNE_CHECK(need.top >= pixels_top && need.left >= pixels_left &&
                  need.top + need.height <= pixels_top + pixels.height && need.left + need.width <= pixels_left + pixels.width,
              "resize: region ({}, {}) {}x{} needs pixels ({}, {}) {}x{}, which the {}x{} image at ({}, {}) does not hold",
              region.top, region.left, region.height, region.width, need.top, need.left, need.height, need.width,
              pixels.height, pixels.width, pixels_top, pixels_left);
  View v{pixels.data, region.height, region.width, pixels.row_bytes(), pixels.data + pixels.bytes(), pixels_top - region.top,
         pixels_left - region.left};
  resample_box(v, rows, cols, out_box, out, scratch);
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
