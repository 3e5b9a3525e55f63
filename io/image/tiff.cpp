// TIFF through libtiff, as Pillow decodes a TIFF's first page: 8-bit gray, gray + alpha, RGB, RGBA and
// palette images and 1-bit bilevel ones; strips or tiles, interleaved or one plane per channel, any
// compression libtiff has (YCbCr JPEG comes back as RGB from libjpeg, as Pillow asks libtiff for).
// convert("RGB") then drops extra samples (alpha, no blending), replicates gray, inverts
// min-is-white, and takes a colormap's high bytes. The Orientation tag is ignored, as by Pillow.
// Anything else (16-bit, float, CMYK, Lab, subsampled raw YCbCr...) is refused by name rather than
// guessed at: Pillow's own conversions there (16-bit gray clipped at 255, for one) are rarely wanted.
#include <tiffio.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine/error.h"
#include "io/image/decode.h"

namespace rtune::io {

namespace {

// The bytes libtiff reads through TIFFClientOpen, and the last message it reported.
struct MemoryFile {
  std::span<const std::byte> bytes;
  uint64_t pos = 0;
  std::string message;
};

tmsize_t read_proc(thandle_t h, void* buf, tmsize_t n) {
  auto* f = static_cast<MemoryFile*>(h);
  if (n < 0 || f->pos >= f->bytes.size()) return 0;
  size_t k = std::min<size_t>(size_t(n), f->bytes.size() - size_t(f->pos));
  std::memcpy(buf, f->bytes.data() + f->pos, k);
  f->pos += k;
  return tmsize_t(k);
}
tmsize_t write_proc(thandle_t, void*, tmsize_t) { return 0; }
toff_t seek_proc(thandle_t h, toff_t off, int whence) {
  auto* f = static_cast<MemoryFile*>(h);
  uint64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? f->pos : f->bytes.size();
  f->pos = base + off;
  return f->pos;
}
int close_proc(thandle_t) { return 0; }
toff_t size_proc(thandle_t h) { return static_cast<MemoryFile*>(h)->bytes.size(); }
int map_proc(thandle_t, tdata_t*, toff_t*) { return 0; }
void unmap_proc(thandle_t, tdata_t, toff_t) {}

int on_error(TIFF*, void* user, const char* module, const char* fmt, va_list ap) {
  char text[512];
  std::vsnprintf(text, sizeof text, fmt, ap);
  static_cast<MemoryFile*>(user)->message = std::string(module ? module : "libtiff") + ": " + text;
  return 1;  // handled: nothing printed
}
int on_warning(TIFF*, void*, const char*, const char*, va_list) { return 1; }  // Pillow shows none either

struct TiffClose {
  void operator()(TIFF* t) const { TIFFClose(t); }
};
using TiffPtr = std::unique_ptr<TIFF, TiffClose>;

TiffPtr open_tiff(MemoryFile& f, std::string_view name) {
  std::unique_ptr<TIFFOpenOptions, void (*)(TIFFOpenOptions*)> opts(TIFFOpenOptionsAlloc(), TIFFOpenOptionsFree);
  TIFFOpenOptionsSetErrorHandlerExtR(opts.get(), on_error, &f);
  TIFFOpenOptionsSetWarningHandlerExtR(opts.get(), on_warning, &f);
  // No single libtiff buffer may pass 1 GiB, whatever a hostile header claims (the largest strip of an
  // image under the decompression-bomb limit is ~0.7 GB).
  TIFFOpenOptionsSetMaxSingleMemAlloc(opts.get(), tmsize_t(1) << 30);
  TiffPtr t(TIFFClientOpenExt(std::string(name).c_str(), "rm", &f, read_proc, write_proc, seek_proc, close_proc,
                              size_proc, map_proc, unmap_proc, opts.get()));
  if (!t) fail("decode_image: {}: corrupt TIFF header ({})", name, f.message.empty() ? "unreadable" : f.message);
  return t;
}

// {height, width} of the first page.
std::pair<int, int> page_size(TIFF* t, const MemoryFile& f, std::string_view name) {
  uint32_t w = 0, h = 0;
  if (!TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h) || w == 0 || h == 0 ||
      w > 0x7FFFFFFFu || h > 0x7FFFFFFFu)
    fail("decode_image: {}: corrupt TIFF header (no valid image size{})", name, f.message.empty() ? "" : "; " + f.message);
  return {int(h), int(w)};
}

}  // namespace

bool is_tiff(std::span<const std::byte> b) {
  if (b.size() < 4) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(b.data());
  return (p[0] == 'I' && p[1] == 'I' && (p[2] == 42 || p[2] == 43) && p[3] == 0) ||  // classic or BigTIFF
         (p[0] == 'M' && p[1] == 'M' && p[2] == 0 && (p[3] == 42 || p[3] == 43));
}

std::pair<int, int> tiff_header_size(std::span<const std::byte> bytes, std::string_view name) {
  MemoryFile f{bytes, 0, {}};
  TiffPtr t = open_tiff(f, name);
  return page_size(t.get(), f, name);
}

Image decode_tiff(std::span<const std::byte> bytes, std::string_view name) {
  MemoryFile f{bytes, 0, {}};
  TiffPtr t = open_tiff(f, name);
  TIFF* tif = t.get();
  // Plain variables, not a structured binding: clang 14 (the fuzz build) cannot capture those in a lambda.
  const auto size = page_size(tif, f, name);
  const int h = size.first, w = size.second;
  check_pixel_count(name, h, w);
  uint16_t bps = 1, spp = 1, photometric = 0, planar = PLANARCONFIG_CONTIG, format = SAMPLEFORMAT_UINT, compression = 0;
  TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
  TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &format);
  TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &compression);
  if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric)) fail("decode_image: {}: corrupt TIFF header (no photometric tag)", name);
  if (photometric == PHOTOMETRIC_YCBCR && compression == COMPRESSION_JPEG) {
    TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);  // libjpeg converts, as for Pillow
    photometric = PHOTOMETRIC_RGB;
  }
  // Premultiplied alpha would need Pillow's un-premultiplying unpackers: refused, as rare in datasets.
  uint16_t extra_count = 0;
  uint16_t* extra = nullptr;
  bool premultiplied = false;
  if (TIFFGetField(tif, TIFFTAG_EXTRASAMPLES, &extra_count, &extra))
    for (uint16_t i = 0; i < extra_count; ++i) premultiplied |= extra[i] == EXTRASAMPLE_ASSOCALPHA;
  const bool gray = photometric == PHOTOMETRIC_MINISBLACK || photometric == PHOTOMETRIC_MINISWHITE;
  const bool supported = format == SAMPLEFORMAT_UINT && planar != 0 && !premultiplied &&
                         ((gray && (bps == 8 || (bps == 1 && spp == 1))) ||
                          (photometric == PHOTOMETRIC_RGB && bps == 8 && spp >= 3) ||
                          (photometric == PHOTOMETRIC_PALETTE && bps == 8 && spp == 1));
  if (!supported)
    fail("decode_image: {}: unsupported TIFF ({} bit(s) per sample, {} sample(s) per pixel, photometric {}, sample "
         "format {}{}): rtune reads 8-bit gray, RGB(A) and palette TIFFs and 1-bit bilevel ones; convert this one to "
         "PNG or JPEG", name, bps, spp, photometric, format, premultiplied ? ", premultiplied alpha" : "");
  uint16_t *cmap_r = nullptr, *cmap_g = nullptr, *cmap_b = nullptr;
  if (photometric == PHOTOMETRIC_PALETTE && !TIFFGetField(tif, TIFFTAG_COLORMAP, &cmap_r, &cmap_g, &cmap_b))
    fail("decode_image: {}: corrupt TIFF (palette image without a colormap)", name);

  // The decoded samples: one buffer of h rows per plane (a single plane when interleaved).
  const int planes = planar == PLANARCONFIG_SEPARATE ? spp : 1;
  const tmsize_t row_bytes = TIFFScanlineSize(tif);
  if (row_bytes <= 0) fail("decode_image: {}: corrupt TIFF header ({})", name, f.message);
  // Hostile headers (thousands of samples per pixel, giant tiles) must not size a buffer: nothing
  // here needs more than an RGBA image under the decompression-bomb limit.
  constexpr uint64_t kMaxBytes = uint64_t(kMaxImagePixels) * 4;
  const uint64_t raw_bytes = uint64_t(planes) * uint64_t(h) * uint64_t(row_bytes);
  if (raw_bytes > kMaxBytes)
    fail("decode_image: {}: TIFF of {} bytes of samples ({} per pixel), over the limit of {}; not decoded", name,
         raw_bytes, spp, kMaxBytes);
  std::vector<uint8_t> raw(raw_bytes);
  auto plane_row = [&](int plane, uint32_t y) { return raw.data() + (size_t(plane) * size_t(h) + y) * size_t(row_bytes); };
  auto corrupt = [&] { fail("decode_image: {}: corrupt or truncated TIFF data ({})", name, f.message.empty() ? "unreadable" : f.message); };
  if (TIFFIsTiled(tif)) {
    uint32_t tw = 0, th = 0;
    TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
    const tmsize_t tile_row = TIFFTileRowSize(tif), tile_size = TIFFTileSize(tif);
    if (tw == 0 || th == 0 || tile_row <= 0 || tile_size <= 0 || uint64_t(tile_size) > kMaxBytes) corrupt();
    std::vector<uint8_t> tile(static_cast<size_t>(tile_size));
    const size_t bits_per_px = size_t(bps) * (planes == 1 ? spp : 1);
    for (int plane = 0; plane < planes; ++plane)
      for (uint32_t y0 = 0; y0 < uint32_t(h); y0 += th)
        for (uint32_t x0 = 0; x0 < uint32_t(w); x0 += tw) {
          if (TIFFReadEncodedTile(tif, TIFFComputeTile(tif, x0, y0, 0, uint16_t(plane)), tile.data(), tile_size) < 0) corrupt();
          // Tile widths are multiples of 16 pixels, so a tile's columns start on a byte.
          const size_t dst_off = x0 * bits_per_px / 8;
          const size_t n = std::min<size_t>(size_t(tile_row), size_t(row_bytes) - dst_off);
          for (uint32_t y = y0; y < std::min<uint32_t>(y0 + th, uint32_t(h)); ++y)
            std::memcpy(plane_row(plane, y) + dst_off, tile.data() + size_t(y - y0) * size_t(tile_row), n);
        }
  } else {
    uint32_t rows_per_strip = 0;
    TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rows_per_strip);
    rows_per_strip = std::clamp<uint32_t>(rows_per_strip, 1, uint32_t(h));
    // Each strip decodes straight into its rows (libtiff stops at the size it is given).
    for (int plane = 0; plane < planes; ++plane)
      for (uint32_t y0 = 0; y0 < uint32_t(h); y0 += rows_per_strip) {
        const tmsize_t want = tmsize_t(std::min<uint32_t>(rows_per_strip, uint32_t(h) - y0)) * row_bytes;
        if (TIFFReadEncodedStrip(tif, TIFFComputeStrip(tif, y0, uint16_t(plane)), plane_row(plane, y0), want) < want)
          corrupt();
      }
  }

  Image out(h, w);
  const bool invert = photometric == PHOTOMETRIC_MINISWHITE;
  for (uint32_t y = 0; y < uint32_t(h); ++y) {
    uint8_t* o = out.pixels.data() + size_t(y) * size_t(w) * 3;
    auto sample = [&](uint32_t x, int c) -> uint8_t {  // 8-bit sample c of pixel x
      return planes == 1 ? plane_row(0, y)[size_t(x) * spp + size_t(c)] : plane_row(c, y)[x];
    };
    for (uint32_t x = 0; x < uint32_t(w); ++x, o += 3) {
      if (photometric == PHOTOMETRIC_RGB) {
        o[0] = sample(x, 0), o[1] = sample(x, 1), o[2] = sample(x, 2);
      } else if (photometric == PHOTOMETRIC_PALETTE) {
        const uint8_t i = sample(x, 0);
        o[0] = uint8_t(cmap_r[i] >> 8), o[1] = uint8_t(cmap_g[i] >> 8), o[2] = uint8_t(cmap_b[i] >> 8);
      } else {
        uint8_t v = bps == 1 ? ((plane_row(0, y)[x / 8] >> (7 - x % 8)) & 1 ? 255 : 0) : sample(x, 0);
        if (invert) v = uint8_t(255 - v);
        o[0] = o[1] = o[2] = v;
      }
    }
  }
  return out;
}

}  // namespace rtune::io
