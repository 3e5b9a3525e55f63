// Image decoding to RGB, matching PIL's Image.open(f).convert("RGB"): JPEG via libjpeg-turbo (same IDCT
// and fancy upsampling as Pillow's; baseline scans entropy-decoded by rtune), PNG/BMP/GIF/TGA/PNM via stb_image,
// WebP via libwebp (first frame, as Pillow), TIFF via libtiff (first page; 8-bit and bilevel, see tiff.cpp).
// Grayscale is replicated, alpha dropped (not blended), palettes expanded, CMYK converted as PIL's
// cmyk2rgb with Adobe-inverted samples. No EXIF rotation, like PIL without ImageOps.exif_transpose.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "io/image/image.h"

namespace rtune::io {

// Lets a JPEG decode use libjpeg-turbo's DCT-domain scaling (1/2, 1/4, 1/8) when the consumer needs
// far fewer pixels. The smallest scale is chosen whose output still satisfies every non-zero bound,
// so the decode never lands below what the first transform needs. All zero: full size (PIL-exact).
struct DecodeHint {
  int min_short_side = 0;  // min(height, width) of the decoded image must be >= this
  int min_height = 0;
  int min_width = 0;
  bool any() const { return min_short_side > 0 || min_height > 0 || min_width > 0; }
};

enum class ImageFormat { unknown, jpeg, png, bmp, gif, tga, pnm, webp, tiff };

// PIL refuses to open an image of more pixels (DecompressionBombError: 2 x Image.MAX_IMAGE_PIXELS).
// rtune refuses it too, before allocating: a few hostile header bytes must not claim gigabytes.
constexpr int64_t kMaxImagePixels = 178956970;
// Throws rtune::Error naming the file when height x width exceeds kMaxImagePixels.
void check_pixel_count(std::string_view name, int64_t height, int64_t width);

// Sniffs the format from magic bytes (TGA has none: recognised by a plausible header only).
ImageFormat sniff_format(std::span<const std::byte> bytes);

// Decodes a whole file. Throws rtune::Error naming the file and the reason (missing, empty,
// truncated, corrupt, unsupported format).
Image decode_image(const std::filesystem::path& path, const DecodeHint& hint = {});

// Decodes bytes in memory; `name` is used in error messages.
Image decode_image(std::span<const std::byte> bytes, std::string_view name, const DecodeHint& hint = {});

// The same, into `out`, reusing its pixel buffer when it is large enough (a loader worker decodes
// many same-sized images; fresh buffers cost page faults). JPEG (not CMYK) decodes in place.
void decode_image_into(std::span<const std::byte> bytes, std::string_view name, const DecodeHint& hint, Image& out);

// Reads only the header: format and size. Throws like decode_image for empty, unknown or corrupt
// headers (truncated pixel data is found only by a full decode).
struct ImageInfo {
  ImageFormat format = ImageFormat::unknown;
  int height = 0, width = 0;
};
ImageInfo probe_image(std::span<const std::byte> bytes, std::string_view name);
ImageInfo probe_image(const std::filesystem::path& path);

// The pieces, for tests and callers that know the format.
Image decode_jpeg(std::span<const std::byte> bytes, std::string_view name, const DecodeHint& hint = {});
void decode_jpeg_into(std::span<const std::byte> bytes, std::string_view name, const DecodeHint& hint, Image& out);
// Decodes only what `want(height, width)` asks for of a JPEG (given the image's size, it returns the
// box needed, or nullopt for none): rows above the box are only entropy-decoded, rows below it not at
// all, columns beside it (beyond the iMCU grid) get no IDCT or colour conversion. The box's pixels are
// bit-identical to decode_jpeg()'s; `out` gets a window holding at least the box. Returns false,
// decoding nothing, for files a full decode must handle: not JPEG, CMYK/YCCK/RGB-coded, not ending in
// the end-of-image marker (so that a truncated file is rejected as decode_jpeg() rejects it, never
// half-read), or progressive (unless the box is the whole image). Throws like decode_image for
// corrupt data.
bool decode_jpeg_region(std::span<const std::byte> bytes, std::string_view name,
                        const std::function<std::optional<CropBox>(int height, int width)>& want, ImageWindow& out);
Image decode_stb(std::span<const std::byte> bytes, std::string_view name);
Image decode_webp(std::span<const std::byte> bytes, std::string_view name);
bool is_webp(std::span<const std::byte> bytes);  // RIFF....WEBP
std::pair<int, int> webp_header_size(std::span<const std::byte> bytes, std::string_view name);  // {height, width}
Image decode_tiff(std::span<const std::byte> bytes, std::string_view name);
bool is_tiff(std::span<const std::byte> bytes);  // II*\0 / MM\0* (or BigTIFF's 43)
std::pair<int, int> tiff_header_size(std::span<const std::byte> bytes, std::string_view name);  // {height, width}

}  // namespace rtune::io
