// Format sniffing and file reading in front of the JPEG (TurboJPEG) and stb_image decoders.
#include "io/image/decode.h"

#include <cctype>
#include <cstring>
#include <vector>

#include "engine/error.h"
#include "io/image/file_read.h"
#include "io/image/stb_backend.h"

namespace rtune::io {

namespace {

bool starts_with(std::span<const std::byte> b, std::initializer_list<uint8_t> magic) {
  if (b.size() < magic.size()) return false;
  size_t i = 0;
  for (uint8_t m : magic)
    if (uint8_t(b[i++]) != m) return false;
  return true;
}

std::vector<std::byte> read_whole_file(const std::filesystem::path& path) {
  std::vector<std::byte> bytes;
  read_file(path, bytes);
  return bytes;
}

}  // namespace

ImageFormat sniff_format(std::span<const std::byte> b) {
  if (starts_with(b, {0xFF, 0xD8, 0xFF})) return ImageFormat::jpeg;
  if (starts_with(b, {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A})) return ImageFormat::png;
  if (starts_with(b, {'B', 'M'})) return ImageFormat::bmp;
  if (starts_with(b, {'G', 'I', 'F', '8'})) return ImageFormat::gif;
  if (b.size() >= 3 && uint8_t(b[0]) == 'P' && (uint8_t(b[1]) == '5' || uint8_t(b[1]) == '6') &&
      std::isspace(int(uint8_t(b[2]))))
    return ImageFormat::pnm;
  if (is_webp(b)) return ImageFormat::webp;
  if (is_tiff(b)) return ImageFormat::tiff;
  if (stb_is_tga(b)) return ImageFormat::tga;
  return ImageFormat::unknown;
}

void check_pixel_count(std::string_view name, int64_t height, int64_t width) {
  if (height * width > kMaxImagePixels)
    fail("decode_image: {}: {}x{} = {} pixels is over the limit of {} (PIL's decompression-bomb limit); not "
         "decoded", name, width, height, height * width, kMaxImagePixels);
}

Image decode_image(std::span<const std::byte> bytes, std::string_view name, const DecodeHint& hint) {
  if (bytes.empty()) fail("decode_image: {}: empty file (0 bytes)", name);
  switch (sniff_format(bytes)) {
    case ImageFormat::jpeg: return decode_jpeg(bytes, name, hint);
    case ImageFormat::png:
    case ImageFormat::bmp:
    case ImageFormat::gif:
    case ImageFormat::tga:
    case ImageFormat::pnm: return decode_stb(bytes, name);
    case ImageFormat::webp: return decode_webp(bytes, name);
    case ImageFormat::tiff: return decode_tiff(bytes, name);
    case ImageFormat::unknown: break;
  }
  fail("decode_image: {}: not a supported image (expected JPEG, PNG, BMP, GIF, TGA, PPM/PGM, WebP or TIFF data)", name);
}

void decode_image_into(std::span<const std::byte> bytes, std::string_view name, const DecodeHint& hint, Image& out) {
  if (!bytes.empty() && sniff_format(bytes) == ImageFormat::jpeg) return decode_jpeg_into(bytes, name, hint, out);
  // stb allocates its own buffer; copying keeps `out`'s (larger) capacity for the next JPEG.
  Image img = decode_image(bytes, name, hint);
  out.height = img.height;
  out.width = img.width;
  out.pixels.assign(img.pixels.begin(), img.pixels.end());
}

ImageInfo probe_image(std::span<const std::byte> bytes, std::string_view name) {
  if (bytes.empty()) fail("decode_image: {}: empty file (0 bytes)", name);
  ImageInfo info;
  info.format = sniff_format(bytes);
  if (info.format == ImageFormat::unknown)
    fail("decode_image: {}: not a supported image (expected JPEG, PNG, BMP, GIF, TGA, PPM/PGM, WebP or TIFF data)", name);
  auto [h, w] = info.format == ImageFormat::jpeg ? jpeg_header_size(bytes, name)
                : info.format == ImageFormat::webp ? webp_header_size(bytes, name)
                : info.format == ImageFormat::tiff ? tiff_header_size(bytes, name)
                                                   : stb_header_size(bytes, name);
  info.height = h;
  info.width = w;
  return info;
}

ImageInfo probe_image(const std::filesystem::path& path) {
  // Headers sit at the start of a file, except a TIFF's (its directory may be at the end) or one
  // behind large metadata (EXIF, ICC): the first 16 KiB are tried, then the whole file, whose
  // verdict counts. A dataset scan then reads a fraction of each image, not all of it.
  constexpr size_t kHeadBytes = size_t(16) << 10;
  std::vector<std::byte> bytes;
  if (read_file_start(path, kHeadBytes, bytes) > bytes.size()) {
    try {
      return probe_image(std::span<const std::byte>(bytes), path.string());
    } catch (const Error&) {
    }
    read_file(path, bytes);
  }
  return probe_image(std::span<const std::byte>(bytes), path.string());
}

Image decode_image(const std::filesystem::path& path, const DecodeHint& hint) {
  std::vector<std::byte> bytes = read_whole_file(path);
  return decode_image(std::span<const std::byte>(bytes), path.string(), hint);
}

}  // namespace rtune::io
