// PNG/BMP/GIF/TGA through stb_image, converted to RGB as PIL's convert("RGB") does: gray is
// replicated, alpha is dropped (stb's 4->3 / 2->3 channel conversion drops it, it does not blend),
// palettes are expanded, 16-bit samples keep their high byte (PIL's "RGB;16B" unpacker).
// The single STB_IMAGE_IMPLEMENTATION of the project lives here.
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#define STBI_NO_STDIO
#include <stb/stb_image.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <vector>

#include "engine/error.h"
#include "io/image/decode.h"
#include "io/image/stb_backend.h"
#include "io/image/stb_palette.h"

namespace rtune::io {

namespace {

uint32_t le32(std::span<const std::byte> b, size_t off) {
  return uint32_t(b[off]) | uint32_t(b[off + 1]) << 8 | uint32_t(b[off + 2]) << 16 | uint32_t(b[off + 3]) << 24;
}

// stb fills a short BMP with zeros instead of failing; PIL reports it truncated. The BMP file
// header states the file size, so compare against it.
void check_bmp_complete(std::span<const std::byte> b, std::string_view name) {
  if (b.size() < 14) fail("decode_image: {}: truncated BMP header", name);
  uint32_t declared = le32(b, 2), data_offset = le32(b, 10);
  if (data_offset >= b.size()) fail("decode_image: {}: truncated BMP (no pixel data)", name);
  if (declared > b.size())
    fail("decode_image: {}: truncated BMP ({} of {} bytes present)", name, b.size(), declared);
}

uint32_t be32(std::span<const std::byte> b, size_t off) {
  return uint32_t(b[off]) << 24 | uint32_t(b[off + 1]) << 16 | uint32_t(b[off + 2]) << 8 | uint32_t(b[off + 3]);
}

// stb_image sizes its IDAT buffer from each chunk's declared length before reading it: a 158-byte file
// that declares a 1.7 GB IDAT makes it reserve 2 GB (found by tests/fuzz: seconds under ASan). PIL
// reports such a file truncated when it loads the pixels; so does rtune's decode, from the chunk lengths,
// before stb allocates anything.
void check_png_chunks_fit(std::span<const std::byte> b, std::string_view name) {
  for (size_t pos = 8; pos + 8 <= b.size();) {  // after the signature: length, type, data, CRC
    const uint64_t length = be32(b, pos);
    const bool is_end = std::memcmp(&b[pos + 4], "IEND", 4) == 0;
    if (length + 4 > b.size() - pos - 8)  // its data and CRC must follow
      fail("decode_image: {}: truncated PNG (a chunk declares {} data bytes; the file holds {} more)", name, length,
           b.size() - pos - 8);
    if (is_end) return;
    pos += size_t(length) + 12;
  }
}

// stb_image 2.27 reads a PGM/PPM header with an int that overflows on long numbers (undefined
// behaviour), and leaves the pixels of a file cut short uninitialised (heap bytes in the image; PIL
// reports it truncated). Both found by tests/fuzz, both fixed upstream later. So the header is parsed
// here first, as stbi__pnm_info does, and the file must hold all the samples it announces.
void check_pnm_complete(std::span<const std::byte> b, std::string_view name) {
  size_t pos = 2;  // after "P5" / "P6"
  auto at_eof = [&] { return pos >= b.size(); };
  auto get8 = [&] { return at_eof() ? char(0) : char(b[pos++]); };
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; };
  char c = get8();
  auto skip_whitespace = [&] {
    for (;;) {
      while (!at_eof() && is_space(c)) c = get8();
      if (at_eof() || c != '#') break;
      while (!at_eof() && c != '\n' && c != '\r') c = get8();
    }
  };
  auto integer = [&](const char* what) {
    int64_t v = 0;
    while (!at_eof() && c >= '0' && c <= '9') {
      v = v * 10 + (c - '0');
      if (v > std::numeric_limits<int>::max()) fail("decode_image: {}: corrupt PNM header ({} too large)", name, what);
      c = get8();
    }
    return v;
  };
  skip_whitespace();
  const int64_t width = integer("width");
  skip_whitespace();
  const int64_t height = integer("height");
  skip_whitespace();
  const int64_t maxval = integer("maximum value");
  const int64_t channels = uint8_t(b[1]) == '6' ? 3 : 1, sample_bytes = maxval > 255 ? 2 : 1;
  check_pixel_count(name, height, width);  // before the product below can overflow
  const uint64_t need = uint64_t(width * height * channels * sample_bytes);
  if (b.size() - pos < need) fail("decode_image: {}: truncated PNM ({} of {} sample bytes present)", name, b.size() - pos, need);
}

// The same for an uncompressed true-colour or gray TGA: stb_image reads its rows without checking
// that they were there (found by tests/fuzz). Its other TGA paths read byte by byte, zeros past the end.
void check_tga_complete(std::span<const std::byte> b, std::string_view name) {
  if (b.size() < 18) fail("decode_image: {}: truncated TGA header", name);
  const int id_length = int(b[0]), color_mapped = int(b[1]), type = int(b[2]), bits = int(b[16]);
  const uint64_t width = uint64_t(b[12]) | uint64_t(b[13]) << 8, height = uint64_t(b[14]) | uint64_t(b[15]) << 8;
  // stbi__tga_get_comp: bytes per pixel of the rows stb copies whole (15/16-bit colour goes pixel by pixel).
  const int bytes_per_pixel = bits == 8 ? 1 : bits == 16 && type == 3 ? 2 : bits == 24 || bits == 32 ? bits / 8 : 0;
  if (color_mapped != 0 || type >= 8 || bytes_per_pixel == 0) return;
  const uint64_t need = 18 + uint64_t(id_length) + width * height * uint64_t(bytes_per_pixel);
  if (b.size() < need) fail("decode_image: {}: truncated TGA ({} of {} bytes present)", name, b.size(), need);
}

}  // namespace

bool stb_is_tga(std::span<const std::byte> bytes) {
  if (bytes.size() < 18 || bytes.size() > size_t(std::numeric_limits<int>::max())) return false;
  // Only TGA: stb_image also sniffs PSD/PNM/PIC, which we do not claim to support.
  int x = 0, y = 0, c = 0;
  const auto* p = reinterpret_cast<const stbi_uc*>(bytes.data());
  uint8_t image_type = uint8_t(bytes[2]);
  bool tga_type = image_type == 1 || image_type == 2 || image_type == 3 || image_type == 9 ||
                  image_type == 10 || image_type == 11;
  return tga_type && stbi_info_from_memory(p, int(bytes.size()), &x, &y, &c) == 1;
}

std::pair<int, int> stb_header_size(std::span<const std::byte> bytes, std::string_view name) {
  if (bytes.size() > size_t(std::numeric_limits<int>::max())) fail("decode_image: {}: file too large for stb_image", name);
  const ImageFormat format = sniff_format(bytes);
  if (format == ImageFormat::bmp) check_bmp_complete(bytes, name);
  if (format == ImageFormat::pnm) check_pnm_complete(bytes, name);
  if (format == ImageFormat::tga) check_tga_complete(bytes, name);
  int x = 0, y = 0, c = 0;
  const auto* p = reinterpret_cast<const stbi_uc*>(bytes.data());
  if (stbi_info_from_memory(p, int(bytes.size()), &x, &y, &c) != 1 || x <= 0 || y <= 0) {
    const char* why = stbi_failure_reason();
    fail("decode_image: {}: corrupt or unsupported image header ({})", name, why ? why : "unknown stb_image error");
  }
  return {y, x};
}

Image decode_stb(std::span<const std::byte> bytes, std::string_view name) {
  if (bytes.empty()) fail("decode_image: {}: empty file (0 bytes)", name);
  if (bytes.size() > size_t(std::numeric_limits<int>::max())) fail("decode_image: {}: file too large for stb_image", name);
  auto [header_h, header_w] = stb_header_size(bytes, name);  // also checks that a BMP, PNM or TGA is complete
  check_pixel_count(name, header_h, header_w);
  // Palette indices past the palette would read stb's uninitialised palette entries.
  const ImageFormat format = sniff_format(bytes);
  if (format == ImageFormat::bmp) check_bmp_palette_indices(bytes, name);
  if (format == ImageFormat::png) check_png_chunks_fit(bytes, name);  // the probe reads IHDR only, as PIL's open
  std::optional<std::vector<std::byte>> padded = format == ImageFormat::png ? png_with_full_palette(bytes) : std::nullopt;
  std::span<const std::byte> input = padded ? std::span<const std::byte>(*padded) : bytes;
  if (input.size() > size_t(std::numeric_limits<int>::max())) fail("decode_image: {}: file too large for stb_image", name);
  int w = 0, h = 0, channels_in_file = 0;
  const auto* p = reinterpret_cast<const stbi_uc*>(input.data());
  // stb_image 2.27 widens a 16-bit PGM to 3 channels with its 8-bit converter, reading past its buffer
  // (fixed upstream in 2.28; found by tests/fuzz): such files are loaded as they are, gray widened here.
  const bool pnm16 = format == ImageFormat::pnm && stbi_is_16_bit_from_memory(p, int(input.size()));
  const int channels = pnm16 ? 0 : 3;
  std::unique_ptr<stbi_uc, void (*)(void*)> data(
      stbi_load_from_memory(p, int(input.size()), &w, &h, &channels_in_file, channels), stbi_image_free);
  if (!data) {
    const char* why = stbi_failure_reason();
    fail("decode_image: {}: corrupt or unsupported image ({})", name, why ? why : "unknown stb_image error");
  }
  if (w <= 0 || h <= 0) fail("decode_image: {}: image has no pixels ({}x{})", name, w, h);
  Image img(h, w);
  if (channels == 0 && channels_in_file == 1) {
    for (size_t i = 0, n = size_t(h) * size_t(w); i < n; ++i) std::memset(&img.pixels[3 * i], data.get()[i], 3);
  } else {
    RTUNE_CHECK(channels == 3 || channels_in_file == 3, "decode_image: {}: {} channels", name, channels_in_file);
    std::memcpy(img.pixels.data(), data.get(), img.pixels.size());
  }
  return img;
}

}  // namespace rtune::io
