// Image decoding to RGB, matching PIL's Image.open(f).convert("RGB"): JPEG via libjpeg-turbo's
// TurboJPEG (same IDCT and fancy upsampling as Pillow's libjpeg-turbo), PNG/BMP/GIF/TGA/PNM via stb_image.
// Grayscale is replicated, alpha dropped (not blended), palettes expanded, CMYK converted as PIL's
// cmyk2rgb with Adobe-inverted samples. No EXIF rotation, like PIL without ImageOps.exif_transpose.
#pragma once
#include <cstddef>
#include <filesystem>
#include <span>
#include <string_view>
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

enum class ImageFormat { unknown, jpeg, png, bmp, gif, tga, pnm };

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

// Reads a whole file into `out` (resized to the file's size, capacity reused); errors as decode_image.
void read_file(const std::filesystem::path& path, std::vector<std::byte>& out);

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
Image decode_stb(std::span<const std::byte> bytes, std::string_view name);

}  // namespace rtune::io
