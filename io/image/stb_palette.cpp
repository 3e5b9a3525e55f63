// Palette indices past the palette, before stb_image sees the file (issue 21: such pixels decoded
// uninitialised stack memory). Pillow 13 decodes a PNG's as black, so a PNG's palette is padded with
// black and decodes as Pillow's. Pillow's BMP reader gives black, or the index itself as gray when the
// palette is a gray ramp, and misreads 4-bit gray ramps: such a BMP is refused as corrupt instead.
#include "io/image/stb_palette.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "engine/error.h"

namespace rtune::io {

namespace {

constexpr size_t kPngSignature = 8;
constexpr size_t kFullPalette = 256 * 3;  // PLTE bytes

uint32_t be32(std::span<const std::byte> b, size_t off) {
  return uint32_t(b[off]) << 24 | uint32_t(b[off + 1]) << 16 | uint32_t(b[off + 2]) << 8 | uint32_t(b[off + 3]);
}
uint32_t le16(std::span<const std::byte> b, size_t off) { return uint32_t(b[off]) | uint32_t(b[off + 1]) << 8; }
uint32_t le32(std::span<const std::byte> b, size_t off) { return le16(b, off) | le16(b, off + 2) << 16; }

bool chunk_is(std::span<const std::byte> b, size_t off, const char* type) {
  return std::memcmp(b.data() + off + 4, type, 4) == 0;
}

}  // namespace

std::optional<std::vector<std::byte>> png_with_full_palette(std::span<const std::byte> png) {
  constexpr size_t kColorTypeAt = kPngSignature + 8 + 9;  // IHDR data: width, height, depth, colour type
  if (png.size() <= kColorTypeAt || !chunk_is(png, kPngSignature, "IHDR") || uint8_t(png[kColorTypeAt]) != 3)
    return std::nullopt;
  std::vector<std::byte> out;
  size_t copied = 0;  // png[0, copied) is in `out`
  for (size_t at = kPngSignature; at + 12 <= png.size();) {
    const uint64_t length = be32(png, at);
    if (length > png.size() - at - 12) break;  // runs past the end: stb refuses it
    if (chunk_is(png, at, "IDAT")) break;      // stb reads the palette before the first IDAT
    // stb refuses an empty PLTE or one not made of whole entries: keep those as they are.
    if (chunk_is(png, at, "PLTE") && length > 0 && length < kFullPalette && length % 3 == 0) {
      const size_t data_end = at + 8 + size_t(length);
      out.insert(out.end(), png.begin() + copied, png.begin() + data_end);
      const size_t length_at = out.size() - size_t(length) - 8;
      for (int i = 0; i < 4; ++i) out[length_at + size_t(i)] = std::byte((kFullPalette >> (24 - 8 * i)) & 0xff);
      out.resize(out.size() + kFullPalette - size_t(length), std::byte{0});
      // The chunk's CRC now is stale: stb_image checks no CRCs ("no CRC checking", stb_image.h).
      copied = data_end;
    }
    at += 12 + size_t(length);
  }
  if (copied == 0) return std::nullopt;
  out.insert(out.end(), png.begin() + copied, png.end());
  return out;
}

void check_bmp_palette_indices(std::span<const std::byte> bmp, std::string_view name) {
  // The fields as stb_image's stbi__bmp_parse_header reads them; files it refuses are left to it.
  if (bmp.size() < 30) return;
  const uint32_t offset = le32(bmp, 10), header_size = le32(bmp, 14);
  if (offset > uint32_t(INT32_MAX)) return;
  const bool os2 = header_size == 12;  // BITMAPCOREHEADER: 16-bit sizes, 3-byte palette entries
  if (!os2 && header_size != 40 && header_size != 56 && header_size != 108 && header_size != 124) return;
  if (!os2 && bmp.size() < 50) return;
  // stb reads the compression as a signed int: it refuses 1, 2 and >= 4 (and 3 below 16 bits) but
  // decodes a negative value as uncompressed, reading the palette as it would for 0 (found by fuzz_stb).
  // Pillow refuses any compression it does not know, and so does rtune.
  if (!os2 && int32_t(le32(bmp, 30)) < 0)
    fail("decode_image: {}: corrupt BMP: unknown compression {}", name, int32_t(le32(bmp, 30)));
  const int64_t width = os2 ? le16(bmp, 18) : le32(bmp, 18);
  const int64_t height = os2 ? le16(bmp, 20) : std::abs(int64_t(int32_t(le32(bmp, 22))));
  const uint32_t bits = le16(bmp, os2 ? 24 : 28);
  if (bits != 1 && bits != 4 && bits != 8) return;
  if (!os2 && le32(bmp, 30) != 0) return;  // compressed: stb refuses RLE and the rest at these depths

  // stb reads as many entries as fit between the headers and the pixels (its OS/2 arithmetic
  // subtracts 24, not 12, so it misses the last 4 entries of a full OS/2 palette); Pillow reads the
  // header's colour count, or 2^bits.
  const int64_t gap = int64_t(offset) - 14;
  const int64_t stb_entries = os2 ? (gap - 24) / 3 : (gap - int64_t(header_size)) >> 2;
  const uint32_t colors_used = os2 ? 0 : le32(bmp, 46);
  const int64_t pillow_entries = colors_used != 0 ? int64_t(colors_used) : int64_t(1) << bits;
  const int64_t entries = std::max<int64_t>(0, std::min(stb_entries, pillow_entries));
  if (entries >= int64_t(1) << bits) return;
  if (entries == 0 && width > 0 && height > 0)  // even a pixel past the end of the file reads as index 0
    fail("decode_image: {}: corrupt BMP: it has pixels but no palette entries", name);

  // Rows are padded to 4 bytes; bytes past the end of the file read as 0 in stb (index 0).
  const int64_t row_bytes = (width * bits + 7) / 8, stride = (row_bytes + 3) / 4 * 4;
  const uint32_t mask = (1u << bits) - 1;
  for (int64_t row = 0; row < height; ++row) {
    const int64_t start = int64_t(offset) + row * stride;
    if (start >= int64_t(bmp.size())) break;
    const int64_t present = std::min(row_bytes, int64_t(bmp.size()) - start);
    for (int64_t x = 0; x < width && x * bits / 8 < present; ++x) {
      const int64_t bit = x * bits;
      const uint32_t index = (uint32_t(bmp[size_t(start + bit / 8)]) >> (8 - bits - bit % 8)) & mask;
      if (index >= entries)
        fail("decode_image: {}: corrupt BMP: palette index {} is past the {}-entry palette", name, index, entries);
    }
  }
}

}  // namespace rtune::io
