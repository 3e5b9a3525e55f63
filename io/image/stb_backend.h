// Internal: the stb_image side of decoding (PNG, BMP, GIF first frame, TGA, PNM),
// and the header probes of both backends.
#pragma once
#include <cstddef>
#include <span>
#include <string_view>
#include <utility>

namespace rtune::io {

// Header-only size reads ({height, width}); throw rtune::Error naming `name` on a bad header.
std::pair<int, int> stb_header_size(std::span<const std::byte> bytes, std::string_view name);
std::pair<int, int> jpeg_header_size(std::span<const std::byte> bytes, std::string_view name);

// True when the bytes parse as a TGA header (TGA has no magic number).
bool stb_is_tga(std::span<const std::byte> bytes);

}  // namespace rtune::io
