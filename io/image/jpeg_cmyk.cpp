// CMYK/YCCK JPEGs through the libjpeg API, for the samplings TurboJPEG 2.x cannot name. See jpeg_cmyk.h.
#include "io/image/jpeg_cmyk.h"

#include <vector>

#include "engine/error.h"
#include "io/image/decode.h"
#include "io/image/libjpeg_decompressor.h"

namespace rtune::io {

namespace {

// PIL's MULDIV255: a*b/255 rounded, with its shift trick.
inline int muldiv255(int a, int b) {
  int t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

inline uint8_t clip8(int v) { return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v); }

}  // namespace

void inverted_cmyk_to_rgb(const uint8_t* in, size_t pixels, uint8_t* o) {
  for (size_t i = 0; i < pixels; ++i, in += 4, o += 3) {
    // "CMYK;I": stored inverted; then cmyk2rgb: channel = nk - c*nk/255 with nk = 255 - k.
    int c = 255 - in[0], m = 255 - in[1], y = 255 - in[2], k = 255 - in[3];
    int nk = 255 - k;
    o[0] = clip8(nk - muldiv255(c, nk));
    o[1] = clip8(nk - muldiv255(m, nk));
    o[2] = clip8(nk - muldiv255(y, nk));
  }
}

bool decode_jpeg_cmyk(std::span<const std::byte> bytes, std::string_view name, Image& out) {
  std::vector<uint8_t> row;  // one row of CMYK samples; before setjmp: a longjmp must skip no destructor
  LibjpegDecompressor d;
  if (setjmp(d.err.jump)) fail("decode_image: {}: corrupt JPEG data ({})", name, d.err.message);
  d.start(bytes.data(), bytes.size());
  if (d.cinfo.jpeg_color_space != JCS_CMYK && d.cinfo.jpeg_color_space != JCS_YCCK) return false;
  const int height = int(d.cinfo.image_height), width = int(d.cinfo.image_width);
  if (height <= 0 || width <= 0) fail("decode_image: {}: JPEG has no pixels ({}x{})", name, width, height);
  check_pixel_count(name, height, width);
  d.cinfo.out_color_space = JCS_CMYK;  // YCCK converted to CMYK by libjpeg, as TurboJPEG's TJPF_CMYK
  jpeg_start_decompress(&d.cinfo);
  row.resize(size_t(width) * 4);
  out.height = out.width = 0;  // not a valid image until the rows are in
  out.pixels.resize(size_t(width) * size_t(height) * 3);
  for (int y = 0; y < height; ++y) {
    JSAMPROW samples = row.data();
    if (jpeg_read_scanlines(&d.cinfo, &samples, 1) != 1) fail("decode_image: {}: JPEG data stopped at row {}", name, y);
    inverted_cmyk_to_rgb(row.data(), size_t(width), out.pixels.data() + size_t(y) * size_t(width) * 3);
  }
  if (d.err.premature_end) fail("decode_image: {}: truncated JPEG (Premature end of JPEG file)", name);
  jpeg_abort_decompress(&d.cinfo);
  out.height = height;
  out.width = width;
  return true;
}

std::pair<int, int> libjpeg_header_size(std::span<const std::byte> bytes, std::string_view name) {
  LibjpegDecompressor d;
  if (setjmp(d.err.jump)) fail("decode_image: {}: corrupt JPEG header ({})", name, d.err.message);
  d.start(bytes.data(), bytes.size());
  return {int(d.cinfo.image_height), int(d.cinfo.image_width)};
}

}  // namespace rtune::io
