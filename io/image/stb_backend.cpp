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
  if (sniff_format(bytes) == ImageFormat::bmp) check_bmp_complete(bytes, name);
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
  auto [header_h, header_w] = stb_header_size(bytes, name);  // also checks that a BMP is complete
  check_pixel_count(name, header_h, header_w);
  // Palette indices past the palette would read stb's uninitialised palette entries.
  const ImageFormat format = sniff_format(bytes);
  if (format == ImageFormat::bmp) check_bmp_palette_indices(bytes, name);
  std::optional<std::vector<std::byte>> padded = format == ImageFormat::png ? png_with_full_palette(bytes) : std::nullopt;
  std::span<const std::byte> input = padded ? std::span<const std::byte>(*padded) : bytes;
  if (input.size() > size_t(std::numeric_limits<int>::max())) fail("decode_image: {}: file too large for stb_image", name);
  int w = 0, h = 0, channels_in_file = 0;
  const auto* p = reinterpret_cast<const stbi_uc*>(input.data());
  std::unique_ptr<stbi_uc, void (*)(void*)> data(stbi_load_from_memory(p, int(input.size()), &w, &h, &channels_in_file, 3),
                                                  stbi_image_free);
  if (!data) {
    const char* why = stbi_failure_reason();
    fail("decode_image: {}: corrupt or unsupported image ({})", name, why ? why : "unknown stb_image error");
  }
  if (w <= 0 || h <= 0) fail("decode_image: {}: image has no pixels ({}x{})", name, w, h);
  Image img(h, w);
  std::memcpy(img.pixels.data(), data.get(), img.pixels.size());
  return img;
}

}  // namespace rtune::io
