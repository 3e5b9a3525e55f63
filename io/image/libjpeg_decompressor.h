// Internal: a libjpeg-turbo decompressor (libjpeg API) whose fatal errors longjmp back to the caller,
// shared by the partial decoder (jpeg_region.cpp) and the CMYK decoder (jpeg_cmyk.cpp).
#pragma once
#include <cstddef>
#include <cstdio>  // jpeglib.h needs size_t and FILE declared first
// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include <csetjmp>

namespace rtune::io {

// libjpeg reports fatal errors through error_exit, which must not return: it longjmps back to the
// setjmp of the decoding function, which throws. Warnings are tolerated as TurboJPEG's full decode
// tolerates them, except "Premature end of JPEG file" (Pillow's "image file is truncated").
struct LibjpegErrorManager {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool premature_end;
};

inline void libjpeg_on_error(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<LibjpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->jump, 1);
}

inline void libjpeg_on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  auto* e = reinterpret_cast<LibjpegErrorManager*>(cinfo->err);
  if (cinfo->err->msg_code == JWRN_JPEG_EOF) e->premature_end = true;
  ++cinfo->err->num_warnings;
}

// Owns the decompressor. Built before setjmp, so a longjmp skips no destructor (C++ allows longjmp
// only where a throw would run no non-trivial destructor). Call setjmp(d.err.jump), then start().
struct LibjpegDecompressor {
  jpeg_decompress_struct cinfo{};
  LibjpegErrorManager err{};
  LibjpegDecompressor() {
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = libjpeg_on_error;
    err.mgr.emit_message = libjpeg_on_message;
  }
  ~LibjpegDecompressor() { jpeg_destroy_decompress(&cinfo); }
  // Creates the decompressor on `bytes` (which must outlive it) and reads the header.
  void start(const void* bytes, size_t size) {
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, static_cast<const unsigned char*>(bytes), static_cast<unsigned long>(size));
    jpeg_read_header(&cinfo, TRUE);
  }
};

}  // namespace rtune::io
