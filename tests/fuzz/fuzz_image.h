// Shared by the image decoder harnesses: the checks every decode path must pass on any input, and the
// size bound under which they decode.
#pragma once
#include <optional>
#include <span>

#include "io/image/decode.h"
#include "tests/fuzz/fuzz_util.h"

namespace rtune::fuzz {

// A valid header may ask for up to kMaxImagePixels (PIL's limit, ~179M pixels); decoding that is
// legitimate but takes seconds and hundreds of MB. As libjpeg-turbo's own fuzzers do, larger images
// are only probed.
constexpr int64_t kFuzzMaxPixels = int64_t(1) << 20;

// The header's size, or nullopt when the probe rejects it (the decoders must then reject it too, or
// agree on a size: decode_all_ways checks).
inline std::optional<io::ImageInfo> probe(std::span<const std::byte> bytes) {
  try {
    return io::probe_image(bytes, "fuzz.img");
  } catch (const Error&) {
    return std::nullopt;
  }
}

inline bool small_enough(const std::optional<io::ImageInfo>& info) {
  return !info || int64_t(info->height) * info->width <= kFuzzMaxPixels;
}

// The input of a harness for one format: its bytes and their probed header.
struct FormatInput {
  std::span<const std::byte> bytes;
  std::optional<io::ImageInfo> info;
};
// The input when it sniffs as `format` and is small_enough; nullopt otherwise (the harness returns at
// once, so that libFuzzer spends its time on that format).
inline std::optional<FormatInput> input_of_format(const uint8_t* data, size_t size, io::ImageFormat format) {
  FormatInput in{as_bytes(data, size), std::nullopt};
  if (io::sniff_format(in.bytes) != format) return std::nullopt;
  in.info = probe(in.bytes);
  if (!small_enough(in.info)) return std::nullopt;
  return in;
}

// decode_image and decode_image_into (into a buffer holding a previous image) must agree: both throw
// rtune::Error, or both give the same pixels, of the size the probe read.
inline void decode_all_ways(std::span<const std::byte> bytes, const std::optional<io::ImageInfo>& info) {
  std::optional<io::Image> whole;
  expect_only_rtune_errors([&] { whole = io::decode_image(bytes, "fuzz.img"); });
  io::Image reused(3, 5, 0xAB);
  bool into_ok = false;
  expect_only_rtune_errors([&] {
    io::decode_image_into(bytes, "fuzz.img", {}, reused);
    into_ok = true;
  });
  require(into_ok == whole.has_value(), "decode_image and decode_image_into accept the same inputs");
  if (!whole) return;
  require(whole->pixels.size() == size_t(whole->height) * size_t(whole->width) * 3, "pixels hold height x width x 3");
  require(reused.height == whole->height && reused.width == whole->width && reused.pixels == whole->pixels,
          "decode_image_into gives decode_image's pixels");
  require(info.has_value(), "a decodable image has a readable header");
  require(info->height == whole->height && info->width == whole->width, "the probe reads the decoded size");
  g_sink = touch(std::as_bytes(std::span(whole->pixels)));
}

}  // namespace rtune::fuzz
