// PNG encoding for reports and generated datasets (stb_image_write, zlib-compressed, 8-bit RGB), and
// base64 data URIs so images can live inside a self-contained HTML file.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>
#include "io/image/image.h"

namespace rtune::io {

std::vector<uint8_t> encode_png(const Image& img);
// Writes a PNG file (not atomic: generated data, not state). Throws naming the file on failure.
void write_png(const std::filesystem::path& path, const Image& img);
std::string base64(const std::vector<uint8_t>& bytes);  // RFC 4648, with padding
std::string png_data_uri(const Image& img);               // "data:image/png;base64,…"

// Nearest-neighbour upscale by an integer factor (small training crops are unreadable at 1:1).
Image upscale(const Image& img, int factor);

}  // namespace rtune::io
