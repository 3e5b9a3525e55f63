// Partial JPEG decoding through libjpeg-turbo's libjpeg API (jpeg_skip_scanlines, jpeg_crop_scanline,
// then stop after the last row wanted): a RandomResizedCrop keeps ~half of the image on average, and
// the rows below its box and the columns beside it need no IDCT, upsampling or colour conversion.
// Same library defaults as TurboJPEG's full decode (accurate integer IDCT, fancy upsampling), so the
// pixels are the full decode's, except where libjpeg-turbo's fancy upsampling treats a partial row's
// ends as image edges (libjpeg.txt, "Decompressing partial scanlines"): one column of margin on each
// side that is not an image edge keeps those columns out of the box. Tested against the full decode
// for every subsampling, row and column (tests/data/test_decode.cpp).
#include <algorithm>

#include "engine/error.h"
#include "io/image/decode.h"
#include "io/image/jpeg_huffman.h"
#include "io/image/libjpeg_decompressor.h"

namespace rtune::io {

namespace {

bool ends_with_eoi(std::span<const std::byte> b) {
  return b.size() >= 4 && b[b.size() - 2] == std::byte{0xFF} && b[b.size() - 1] == std::byte{0xD9};
}

}  // namespace

bool decode_jpeg_region(std::span<const std::byte> bytes, std::string_view name,
                        const std::function<std::optional<CropBox>(int height, int width)>& want, ImageWindow& out) {
  bool is_jpeg = bytes.size() >= 3 && bytes[0] == std::byte{0xFF} && bytes[1] == std::byte{0xD8} &&
                 bytes[2] == std::byte{0xFF};
  if (!is_jpeg || !ends_with_eoi(bytes)) return false;
  LibjpegDecompressor d;
  if (setjmp(d.err.jump)) fail("decode_image: {}: corrupt JPEG data ({})", name, d.err.message);
  d.start(bytes.data(), bytes.size());
  if (d.cinfo.jpeg_color_space != JCS_YCbCr && d.cinfo.jpeg_color_space != JCS_GRAYSCALE) return false;
  const int full_h = int(d.cinfo.image_height), full_w = int(d.cinfo.image_width);
  if (full_h <= 0 || full_w <= 0) return false;  // the full decode names the problem
  check_pixel_count(name, full_h, full_w);
  std::optional<CropBox> box = want(full_h, full_w);
  if (!box) return false;
  RTUNE_CHECK(box->height > 0 && box->width > 0 && box->top >= 0 && box->left >= 0 &&
              box->top + box->height <= full_h && box->left + box->width <= full_w,
              "decode_jpeg_region: {}: box ({}, {}) {}x{} is not inside the {}x{} image", name, box->top, box->left,
              box->height, box->width, full_h, full_w);
  // Skipping rows and columns: only for baseline files (see decode.h). The whole image is an ordinary
  // full decode.
  const bool whole = box->top == 0 && box->left == 0 && box->height == full_h && box->width == full_w;
  if (!whole && d.cinfo.progressive_mode) return false;
  d.cinfo.out_color_space = JCS_RGB;  // grayscale replicated, as TurboJPEG's TJPF_RGB
  jpeg_start_decompress(&d.cinfo);
  use_rtune_huffman(d.cinfo);  // libjpeg's own entropy decoder for what it does not take

  // One column of margin where the box does not touch an image edge (see the header), and at least
  // 32 columns: libjpeg-turbo upsamples rows of 2 or fewer chroma samples without the fancy filter.
  int left = std::max(0, box->left - 1), right = std::min(full_w, box->left + box->width + 1);
  if (right - left < 32) {
    right = std::min(full_w, left + 32);
    left = std::max(0, right - 32);
  }
  JDIMENSION x0 = JDIMENSION(left), crop_w = JDIMENSION(right - left);
  if (right - left < full_w) jpeg_crop_scanline(&d.cinfo, &x0, &crop_w);  // moves x0 to the iMCU grid
  const int rows = box->height, width = int(d.cinfo.output_width);
  out.pixels.height = out.pixels.width = 0;  // not a valid window until the rows are in
  out.pixels.pixels.resize(size_t(rows) * size_t(width) * 3);
  if (box->top > 0) jpeg_skip_scanlines(&d.cinfo, JDIMENSION(box->top));
  for (int y = 0; y < rows;) {
    JSAMPROW row = out.pixels.pixels.data() + size_t(y) * size_t(width) * 3;
    JDIMENSION got = jpeg_read_scanlines(&d.cinfo, &row, 1);
    if (got == 0) fail("decode_image: {}: JPEG data stopped at row {}", name, box->top + y);
    y += int(got);
  }
  if (d.err.premature_end) fail("decode_image: {}: truncated JPEG (Premature end of JPEG file)", name);
  jpeg_abort_decompress(&d.cinfo);
  out.pixels.height = rows;
  out.pixels.width = width;
  out.top = box->top;
  out.left = int(x0);
  out.full_height = full_h;
  out.full_width = full_w;
  return true;
}

}  // namespace rtune::io
