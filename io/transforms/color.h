// Colour transforms equal to torchvision's functional ops on PIL images:
//  - grayscale: PIL convert("L") (L = (19595 R + 38470 G + 7471 B + 32768) >> 16, i.e.
//    R*299/1000 + G*587/1000 + B*114/1000 rounded), replicated to 3 channels;
//  - brightness / contrast / saturation: PIL ImageEnhance, i.e. Image.blend(degenerate, img, factor)
//    in float with truncation (and clipping when extrapolating);
//  - hue: F.adjust_hue's PIL path: RGB->HSV (Pillow's 8-bit HSV), H += uint8(hue * 255) mod 256, back.
#pragma once
#include <cstdint>

#include "io/image/image.h"

namespace rtune::io {

// PIL's RGB -> L of one pixel.
inline uint8_t luma(const uint8_t* rgb) {
  return uint8_t((uint32_t(rgb[0]) * 19595u + uint32_t(rgb[1]) * 38470u + uint32_t(rgb[2]) * 7471u + 0x8000u) >> 16);
}

Image to_grayscale3(const Image& in);                        // F.rgb_to_grayscale(img, 3)
Image adjust_brightness(const Image& in, double factor);     // factor >= 0
Image adjust_contrast(const Image& in, double factor);       // factor >= 0
Image adjust_saturation(const Image& in, double factor);     // factor >= 0
Image adjust_hue(const Image& in, double hue_factor);        // hue_factor in [-0.5, 0.5]

}  // namespace rtune::io
