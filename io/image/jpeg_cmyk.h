// Internal: CMYK and YCCK JPEGs as Pillow reads them: samples assumed Adobe-inverted ("CMYK;I"), then
// PIL's cmyk2rgb. TurboJPEG 2.x decodes the samplings it can name; jpeg_cmyk.cpp, through the libjpeg
// API, any other (Pillow writes CMYK 4:2:2 / 4:2:0 as C at 2x1 / 2x2 and M, Y, K at 1x1).
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

#include "io/image/image.h"

namespace rtune::io {

// PIL's "CMYK;I" unpacking then cmyk2rgb, for `pixels` 4-byte CMYK samples into 3-byte RGB ones.
void inverted_cmyk_to_rgb(const uint8_t* cmyk, size_t pixels, uint8_t* rgb);

// Decodes a CMYK or YCCK JPEG at full size, any sampling, with the libjpeg defaults TurboJPEG and
// Pillow use (accurate integer IDCT, fancy upsampling). Returns false, decoding nothing, for other
// colour spaces. Throws rtune::Error naming `name` for corrupt or truncated data.
bool decode_jpeg_cmyk(std::span<const std::byte> bytes, std::string_view name, Image& out);

// {height, width} from libjpeg's header parser, which takes any sampling TurboJPEG 2.x refuses.
// Throws rtune::Error naming `name` for a corrupt header.
std::pair<int, int> libjpeg_header_size(std::span<const std::byte> bytes, std::string_view name);

}  // namespace rtune::io
