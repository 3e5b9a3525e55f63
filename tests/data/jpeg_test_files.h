// JPEG files made in the test itself with the libjpeg API, for what fixtures cannot cover in
// bulk: every chroma sampling, odd sizes, restart intervals, qualities up to 100 and optimised
// Huffman tables (codes up to 16 bits), grayscale, progressive and arithmetic coding.
#pragma once
#include <cstddef>
#include <cstdio>  // jpeglib.h needs size_t and FILE declared first
// clang-format off
#include <jpeglib.h>
// clang-format on

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "io/image/image.h"
#include "engine/rng.h"

namespace rtune::test {

// A colour gradient plus noise (amplitude `noise`): chroma upsampling differences show, and noise
// fills the high frequencies with large coefficients.
inline io::Image jpeg_test_picture(int h, int w, uint64_t seed, int noise = 32) {
  Rng r(seed);
  io::Image img(h, w);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.at(y, x);
      int n = int(r.next_u64() % uint64_t(noise)) - noise / 2;
      p[0] = uint8_t(std::clamp(x * 255 / std::max(w - 1, 1) + n, 0, 255));
      p[1] = uint8_t(std::clamp(y * 255 / std::max(h - 1, 1) - n, 0, 255));
      p[2] = uint8_t(std::clamp((x + y) * 7 % 256 + n, 0, 255));
    }
  return img;
}

struct JpegEncoding {
  int h_samp = 2, v_samp = 2;  // luma sampling factors (chroma 1x1)
  int restart_rows = 0;
  int restart_mcus = 0;  // a restart interval in MCUs (restart_rows wins when both are set)
  int quality = 85;
  bool optimize = false;  // optimised Huffman tables instead of the standard ones
  bool gray = false;      // one component, the luma of the picture
  bool progressive = false;
  bool arithmetic = false;  // arithmetic instead of Huffman coding
};

// A baseline JPEG of `img`.
inline std::vector<std::byte> encode_jpeg(const io::Image& img, const JpegEncoding& e) {
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);  // fatal errors exit: fine for a test encoder of valid input
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = JDIMENSION(img.width);
  c.image_height = JDIMENSION(img.height);
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, e.quality, TRUE);
  if (e.gray) {
    jpeg_set_colorspace(&c, JCS_GRAYSCALE);
  } else {
    c.comp_info[0].h_samp_factor = e.h_samp;
    c.comp_info[0].v_samp_factor = e.v_samp;
  }
  c.optimize_coding = e.optimize ? TRUE : FALSE;
  c.restart_interval = unsigned(e.restart_mcus);
  c.restart_in_rows = e.restart_rows;
  if (e.progressive) jpeg_simple_progression(&c);
  c.arith_code = e.arithmetic ? TRUE : FALSE;
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(img.at(int(c.next_scanline), 0));
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  std::vector<std::byte> out(size);
  std::memcpy(out.data(), buf, size);
  jpeg_destroy_compress(&c);
  std::free(buf);
  return out;
}

}  // namespace rtune::test
