// One JPEG decoded through the libjpeg API with libjpeg-turbo's own entropy decoder or with rtune's
// (use_rtune_huffman after jpeg_start_decompress), recording pixels, warnings and failure, so that the
// two can be compared: data_jpeg_huffman on made files, fuzz_jpeg_huffman on any input.
#pragma once
#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdio>  // jpeglib.h needs size_t and FILE declared first
// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include <algorithm>
#include <iterator>
#include <span>
#include <vector>

#include "io/image/jpeg_huffman.h"

namespace rtune::test {

struct DecodedJpeg {
  std::vector<uint8_t> pixels;  // RGB rows from skip_rows on
  std::vector<int> warnings;    // libjpeg's msg_code of every warning, in order
  int hit_marker = 0;           // JWRN_HIT_MARKER warnings
  bool rtune_decoder = false;   // use_rtune_huffman() took the file
  bool failed = false;          // libjpeg raised an error
  bool too_large = false;       // more than max_pixels: not decoded
};

namespace jpeg_detail {
struct Errors {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  DecodedJpeg* out;
};

inline void on_error(j_common_ptr cinfo) { std::longjmp(reinterpret_cast<Errors*>(cinfo->err)->jump, 1); }

inline void on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  DecodedJpeg& out = *reinterpret_cast<Errors*>(cinfo->err)->out;
  out.warnings.push_back(cinfo->err->msg_code);
  out.hit_marker += cinfo->err->msg_code == JWRN_HIT_MARKER;
}

// Built before setjmp, so a longjmp skips no destructor.
struct Decompressor {
  jpeg_decompress_struct cinfo{};
  Errors err{};
  ~Decompressor() { jpeg_destroy_decompress(&cinfo); }
};
}  // namespace jpeg_detail

// Decodes `bytes` with libjpeg (rtune's entropy decoder if `ours`), skipping the first `skip_rows`
// (at most the image's height); images over `max_pixels` are only read up to their header.
inline void decode_with_libjpeg(std::span<const std::byte> bytes, bool ours, int skip_rows, DecodedJpeg& out,
                                  int64_t max_pixels = INT64_MAX) {
  jpeg_detail::Decompressor d;
  d.cinfo.err = jpeg_std_error(&d.err.mgr);
  d.err.mgr.error_exit = jpeg_detail::on_error;
  d.err.mgr.emit_message = jpeg_detail::on_message;
  d.err.out = &out;
  if (setjmp(d.err.jump)) {
    out.failed = true;
    return;
  }
  jpeg_create_decompress(&d.cinfo);
  jpeg_mem_src(&d.cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&d.cinfo, TRUE);
  if (int64_t(d.cinfo.image_height) * int64_t(d.cinfo.image_width) > max_pixels) {
    out.too_large = true;
    return;
  }
  d.cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&d.cinfo);
  out.rtune_decoder = ours && rtune::io::use_rtune_huffman(d.cinfo);
  const int height = int(d.cinfo.output_height), width = int(d.cinfo.output_width);
  skip_rows = std::clamp(skip_rows, 0, height);
  if (skip_rows > 0) jpeg_skip_scanlines(&d.cinfo, JDIMENSION(skip_rows));
  out.pixels.assign(size_t(height - skip_rows) * size_t(width) * 3, 0);
  for (int y = 0; y < height - skip_rows; ++y) {
    JSAMPROW row = out.pixels.data() + size_t(y) * size_t(width) * 3;
    if (jpeg_read_scanlines(&d.cinfo, &row, 1) != 1) break;
  }
  jpeg_abort_decompress(&d.cinfo);
}

// The warnings to compare between the two decoders: all but two that tell how far each decoder's bit
// reader went, not what it decoded (pixels equal). JWRN_HUFF_BAD_CODE: libjpeg-turbo emits it only
// from its slow path (near the end of the data); its fast path, like rtune's decoder, reads a bad code
// as symbol 0 silently. JWRN_EXTRANEOUS_DATA: bytes between the last MCU's bits and the next marker,
// which libjpeg's reader leaves unread and then skips; rtune's decoder reads the whole scan up front.
// No reader in rtune (nor PIL) acts on either.
inline std::vector<int> comparable_warnings(const DecodedJpeg& d) {
  std::vector<int> w;
  std::copy_if(d.warnings.begin(), d.warnings.end(), std::back_inserter(w),
               [](int c) { return c != JWRN_HUFF_BAD_CODE && c != JWRN_EXTRANEOUS_DATA; });
  return w;
}

}  // namespace rtune::test
