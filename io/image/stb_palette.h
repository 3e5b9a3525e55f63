// Internal: palette indices that point past a PNG's or BMP's palette. stb_image looks them up in an
// uninitialised stack array; Pillow gives black (PNG) or its own quirks (BMP). See stb_palette.cpp.
#pragma once
#include <cstddef>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace rtune::io {

// A copy of a palette PNG whose PLTE chunks hold all 256 entries, the added ones black, as Pillow
// pads a short palette; nullopt when there is nothing to pad (not a palette PNG, a full palette, or
// a malformed chunk stb_image refuses anyway).
std::optional<std::vector<std::byte>> png_with_full_palette(std::span<const std::byte> png);

// Throws rtune::Error naming `name` when a 1/4/8-bit BMP has a pixel whose index is past its palette
// (the entries stb_image reads and Pillow's colour count, whichever is fewer).
void check_bmp_palette_indices(std::span<const std::byte> bmp, std::string_view name);

}  // namespace rtune::io
