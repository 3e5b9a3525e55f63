// JPEG through libjpeg-turbo. A full-size YCbCr or grayscale file with its end marker goes through the
// libjpeg API (decode_jpeg_region, with rtune's entropy decoder for baseline files); the rest (CMYK,
// DCT-scaled decodes, files cut short) through the TurboJPEG API, but for CMYK samplings TurboJPEG 2.x
// cannot name (jpeg_cmyk.cpp). Both use the accurate integer IDCT
// and fancy (smooth) chroma upsampling, the same as Pillow's libjpeg-turbo decoder, so a full-size
// decode equals PIL's Image.open(f).convert("RGB"). CMYK/YCCK files are read as PIL reads them
// (samples assumed Adobe-inverted, "CMYK;I") and converted with PIL's cmyk2rgb.
#include <turbojpeg.h>

#include <algorithm>
#include <cctype>
#include <cstdio>  // jpeglib.h needs size_t and FILE declared first
#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <string_view>
#include <vector>
// clang-format off
#include <jpeglib.h>
// clang-format on

#include "engine/error.h"
#include "io/image/decode.h"
#include "io/image/jpeg_cmyk.h"
#include "io/image/stb_backend.h"

namespace rtune::io {

namespace {

struct TjHandle {
  tjhandle h = tjInitDecompress();
  ~TjHandle() { if (h) tjDestroy(h); }
};

// Smallest 1/2, 1/4, 1/8 scale whose output still meets every bound of the hint; 1/1 otherwise.
tjscalingfactor choose_scale(int w, int h, const DecodeHint& hint) {
  tjscalingfactor best{1, 1};
  if (!hint.any()) return best;
  for (int denom : {2, 4, 8}) {
    tjscalingfactor sf{1, denom};
    int sw = TJSCALED(w, sf), sh = TJSCALED(h, sf);
    bool ok = std::min(sw, sh) >= hint.min_short_side && sh >= hint.min_height && sw >= hint.min_width;
    if (!ok) break;
    best = sf;
  }
  return best;
}

// Does `text` read as libjpeg format `format`? Each printf conversion matches one or more characters.
bool matches_format(std::string_view text, std::string_view format) {
  size_t t = 0;
  for (size_t f = 0; f < format.size(); ++f) {
    if (format[f] != '%') {
      if (t >= text.size() || text[t++] != format[f]) return false;
      continue;
    }
    while (f + 1 < format.size() && !std::isalpha(static_cast<unsigned char>(format[f + 1]))) ++f;  // flags, width
    ++f;  // the conversion letter
    const char next = f + 1 < format.size() ? format[f + 1] : '\0';
    if (t >= text.size()) return false;
    while (t < text.size() && (next == '\0' ? true : text[t] != next)) ++t;
  }
  return t == text.size();
}

// Whether TurboJPEG's failure was only a libjpeg warning (the decode ran to its end). tjGetErrorCode
// cannot tell: it says TJERR_WARNING whenever a warning came first, even when an error then stopped
// the decode half-way, and the rows it never wrote were taken as pixels (found by tests/fuzz). The
// message is the first warning's or the error's, so it is matched against libjpeg's warning texts.
bool only_warned(tjhandle h, int rc) {
  if (rc == 0) return true;
  if (tjGetErrorCode(h) != TJERR_WARNING) return false;
  static const std::vector<std::string_view> warnings = [] {
    std::vector<std::string_view> w;
// The list names two strings of libjpeg's private jversion.h, which no warning is.
#define JVERSION ""
#define JCOPYRIGHT_SHORT ""
#define JMESSAGE(code, text) if (std::string_view(#code).starts_with("JWRN_")) w.push_back(text);
#include <jerror.h>
#undef JMESSAGE
#undef JCOPYRIGHT_SHORT
#undef JVERSION
    return w;
  }();
  const std::string_view message = tjGetErrorStr2(h);
  return std::any_of(warnings.begin(), warnings.end(), [&](std::string_view f) { return matches_format(message, f); });
}

// tjDecompressHeader3 also fails for a libjpeg warning (stray bytes between markers), after reading
// the header; PIL opens such files, and libjpeg decodes them, so only an error counts (found by
// tests/fuzz).
bool header_failed(tjhandle h, int rc) { return !only_warned(h, rc); }

}  // namespace

std::pair<int, int> jpeg_header_size(std::span<const std::byte> bytes, std::string_view name) {
  TjHandle tj;
  if (!tj.h) fail("decode_image: {}: cannot initialise TurboJPEG: {}", name, tjGetErrorStr2(nullptr));
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  if (header_failed(tj.h, tjDecompressHeader3(tj.h, reinterpret_cast<const unsigned char*>(bytes.data()),
                                               static_cast<unsigned long>(bytes.size()), &w, &h, &subsamp, &colorspace))) {
    std::string why = tjGetErrorStr2(tj.h);
    if (why.find("subsampling") == std::string::npos) fail("decode_image: {}: corrupt JPEG header ({})", name, why);
    // A sampling TurboJPEG 2.x does not know (see decode_jpeg_into): libjpeg reads the header.
    std::tie(h, w) = libjpeg_header_size(bytes, name);
  }
  // TurboJPEG reports success with a 0x0 size for data that ends before the frame header.
  if (w <= 0 || h <= 0) fail("decode_image: {}: corrupt JPEG header (no frame header before the data ends)", name);
  return {h, w};
}

Image decode_jpeg(std::span<const std::byte> bytes, std::string_view name, const DecodeHint& hint) {
  Image img;
  decode_jpeg_into(bytes, name, hint, img);
  return img;
}

void decode_jpeg_into(std::span<const std::byte> bytes, std::string_view name, const DecodeHint& hint, Image& out) {
  if (bytes.empty()) fail("decode_image: {}: empty file (0 bytes)", name);
  if (!hint.any()) {
    // Full size through the libjpeg API, whose baseline files get rtune's faster entropy decoder
    // (decode_jpeg_region, whole box: the same pixels). TurboJPEG below for what it declines (CMYK,
    // no end-of-image marker, ...) and for DCT-scaled decodes.
    ImageWindow whole;
    whole.pixels = std::move(out);  // its buffer reused
    auto all = [](int height, int width) { return std::optional<CropBox>(CropBox{0, 0, height, width}); };
    bool done = decode_jpeg_region(bytes, name, all, whole);
    out = std::move(whole.pixels);
    if (done) return;
  }
  TjHandle tj;  // per call: a reused handle can report a stale header for a garbage file
  if (!tj.h) fail("decode_image: {}: cannot initialise TurboJPEG: {}", name, tjGetErrorStr2(nullptr));
  auto* src = reinterpret_cast<const unsigned char*>(bytes.data());
  auto size = static_cast<unsigned long>(bytes.size());
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  if (header_failed(tj.h, tjDecompressHeader3(tj.h, src, size, &w, &h, &subsamp, &colorspace))) {
    std::string why = tjGetErrorStr2(tj.h);
    // TurboJPEG 2.x knows only the standard chroma samplings; libjpeg (Pillow's decoder) takes any,
    // e.g. 4:1:0 or 3x1: decode those whole through it (full size: a hint is only a lower bound).
    if (why.find("subsampling") != std::string::npos) {
      ImageWindow whole;
      auto all = [](int height, int width) { return std::optional<CropBox>(CropBox{0, 0, height, width}); };
      if (decode_jpeg_region(bytes, name, all, whole)) {
        out = std::move(whole.pixels);
        return;
      }
      if (decode_jpeg_cmyk(bytes, name, out)) return;  // e.g. Pillow's CMYK 4:2:0 (C at 2x2, M Y K at 1x1)
    }
    fail("decode_image: {}: corrupt JPEG header ({})", name, why);
  }
  if (w <= 0 || h <= 0) fail("decode_image: {}: JPEG has no pixels ({}x{})", name, w, h);
  check_pixel_count(name, h, w);

  tjscalingfactor sf = choose_scale(w, h, hint);
  int ow = TJSCALED(w, sf), oh = TJSCALED(h, sf);
  bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  int pf = cmyk ? TJPF_CMYK : TJPF_RGB;
  int bpp = tjPixelSize[pf];
  // RGB decodes straight into `out` (its buffer reused); CMYK needs a 4-channel staging buffer.
  std::vector<uint8_t> cmyk_buf;
  std::vector<uint8_t>& buf = cmyk ? cmyk_buf : out.pixels;
  buf.resize(size_t(ow) * size_t(oh) * size_t(bpp));
  out.height = out.width = 0;  // not a valid image until the decode succeeds
  int rc = tjDecompress2(tj.h, src, size, buf.data(), ow, 0, oh, pf, 0);
  if (rc != 0) {
    std::string why = tjGetErrorStr2(tj.h);
    // A warning still yields pixels. Pillow rejects a file that ends early ("image file is
    // truncated") but tolerates the other libjpeg warnings (stray bytes between markers).
    if (!only_warned(tj.h, rc)) fail("decode_image: {}: corrupt JPEG data ({})", name, why);
    if (why.find("Premature end") != std::string::npos)
      fail("decode_image: {}: truncated JPEG ({})", name, why);
  }
  out.height = oh;
  out.width = ow;
  if (!cmyk) return;
  out.pixels.resize(size_t(ow) * size_t(oh) * 3);
  inverted_cmyk_to_rgb(buf.data(), size_t(ow) * size_t(oh), out.pixels.data());
}

}  // namespace rtune::io
