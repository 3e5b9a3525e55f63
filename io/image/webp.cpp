// WebP through libwebp, as Pillow decodes it: Pillow opens every WebP (still or animated) with
// libwebp's WebPAnimDecoder in its default RGBA mode and shows the first frame; convert("RGB") then
// drops the alpha channel (no blending). Using the same API gives the same pixels, alpha or not.
#include <webp/decode.h>
#include <webp/demux.h>

#include <cstring>
#include <memory>

#include "engine/error.h"
#include "io/image/decode.h"

namespace rtune::io {

namespace {

struct AnimDecoderDelete {
  void operator()(WebPAnimDecoder* d) const { WebPAnimDecoderDelete(d); }
};

}  // namespace

bool is_webp(std::span<const std::byte> b) {
  return b.size() >= 12 && std::memcmp(b.data(), "RIFF", 4) == 0 && std::memcmp(b.data() + 8, "WEBP", 4) == 0;
}

std::pair<int, int> webp_header_size(std::span<const std::byte> bytes, std::string_view name) {
  WebPBitstreamFeatures f;
  VP8StatusCode s = WebPGetFeatures(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &f);
  if (s == VP8_STATUS_NOT_ENOUGH_DATA) fail("decode_image: {}: truncated WebP header", name);
  if (s != VP8_STATUS_OK || f.height <= 0 || f.width <= 0) fail("decode_image: {}: corrupt WebP header", name);
  return {f.height, f.width};
}

Image decode_webp(std::span<const std::byte> bytes, std::string_view name) {
  auto [h, w] = webp_header_size(bytes, name);
  check_pixel_count(name, h, w);  // before libwebp allocates its canvas
  WebPData data{reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()};
  std::unique_ptr<WebPAnimDecoder, AnimDecoderDelete> dec(WebPAnimDecoderNew(&data, nullptr));  // RGBA, Pillow's
  WebPAnimInfo info;
  if (!dec || !WebPAnimDecoderGetInfo(dec.get(), &info)) fail("decode_image: {}: corrupt or truncated WebP data", name);
  if (int(info.canvas_height) != h || int(info.canvas_width) != w)
    fail("decode_image: {}: corrupt WebP data (canvas {}x{}, header {}x{})", name, info.canvas_width, info.canvas_height, w, h);
  uint8_t* rgba = nullptr;
  int timestamp = 0;
  if (!WebPAnimDecoderGetNext(dec.get(), &rgba, &timestamp))
    fail("decode_image: {}: corrupt or truncated WebP data (the first frame does not decode)", name);
  Image out(h, w);
  const size_t n = size_t(h) * size_t(w);
  for (size_t i = 0; i < n; ++i) std::memcpy(&out.pixels[3 * i], rgba + 4 * i, 3);
  return out;
}

}  // namespace rtune::io
