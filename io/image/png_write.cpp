#include "io/image/png_write.h"
#include <fstream>
#include "engine/error.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb/stb_image_write.h>

namespace rtune::io {

namespace {
void append(void* ctx, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(ctx);
  out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}
}  // namespace

std::vector<uint8_t> encode_png(const Image& img) {
  RTUNE_CHECK(!img.empty() && img.pixels.size() == size_t(img.height) * img.row_bytes(),
              "encode_png: bad image {}x{} with {} bytes", img.height, img.width, img.pixels.size());
  std::vector<uint8_t> out;
  if (!stbi_write_png_to_func(append, &out, img.width, img.height, 3, img.pixels.data(), int(img.row_bytes())))
    fail("encode_png: stb_image_write failed for a {}x{} image", img.height, img.width);
  return out;
}

void write_png(const std::filesystem::path& path, const Image& img) {
  auto bytes = encode_png(img);
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!f) fail("write_png: cannot write {}", path.string());
}

std::string base64(const std::vector<uint8_t>& b) {
  static const char* tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((b.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < b.size(); i += 3) {
    uint32_t v = uint32_t(b[i]) << 16 | uint32_t(b[i + 1]) << 8 | b[i + 2];
    for (int s = 18; s >= 0; s -= 6) out += tab[(v >> s) & 63];
  }
  if (i + 1 == b.size()) {
    uint32_t v = uint32_t(b[i]) << 16;
    out += tab[(v >> 18) & 63];
    out += tab[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == b.size()) {
    uint32_t v = uint32_t(b[i]) << 16 | uint32_t(b[i + 1]) << 8;
    out += tab[(v >> 18) & 63];
    out += tab[(v >> 12) & 63];
    out += tab[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string png_data_uri(const Image& img) { return "data:image/png;base64," + base64(encode_png(img)); }

Image upscale(const Image& img, int factor) {
  RTUNE_CHECK(factor >= 1, "upscale: factor {} < 1", factor);
  Image out(img.height * factor, img.width * factor);
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x) {
      const uint8_t* s = img.at(y / factor, x / factor);
      uint8_t* d = out.at(y, x);
      d[0] = s[0], d[1] = s[1], d[2] = s[2];
    }
  return out;
}

}  // namespace rtune::io
