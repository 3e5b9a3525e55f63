// Geometric transforms equal to torchvision's functional ops on PIL images (pixel-exact):
// crop (PIL crop: outside the image is 0), center_crop (pads with 0 when the crop is larger, as
// F.center_crop), pad (constant/edge/reflect/symmetric, numpy.pad semantics as F.pad on PIL),
// hflip/vflip (PIL transpose), rotate (PIL Image.rotate, expand=False, about the centre).
#pragma once
#include <array>
#include <cstdint>

#include "io/image/image.h"
#include "io/transforms/resize.h"

namespace rtune::io {

// PIL img.crop((left, top, left + width, top + height)); pixels outside the source are 0.
Image crop(const Image& in, int top, int left, int height, int width);

// torchvision F.center_crop: zero-pads first when the crop exceeds the image; the offset is
// round((H - h) / 2) with Python's round-half-to-even.
Image center_crop(const Image& in, int height, int width);
// The box center_crop takes from a height x width image when the crop fits (no padding).
CropBox center_crop_box(int height, int width, int crop_height, int crop_width);

enum class PadMode { constant, edge, reflect, symmetric };

// F.pad: `left, top, right, bottom` >= 0; `fill` is the RGB value of constant padding.
Image pad(const Image& in, int left, int top, int right, int bottom, PadMode mode = PadMode::constant,
          std::array<uint8_t, 3> fill = {0, 0, 0});

Image hflip(const Image& in);
Image vflip(const Image& in);
// hflip's kernel: one row of `width` RGB pixels, from `src` into `dst` (distinct buffers), in
// reverse pixel order. The loader flips its batch rows in place through a copy of the row.
void reverse_pixels(const uint8_t* src, int width, uint8_t* dst);

// F.rotate on PIL: counter-clockwise by `degrees` about the image centre, output the input's size,
// nearest (Pillow's 16.16 fixed-point affine) or bilinear (its generic transform, truncating to 8
// bits); area outside the source gets `fill`. Multiples of 90 take PIL's exact transpose paths.
Image rotate(const Image& in, double degrees, Interp interp = Interp::nearest, std::array<uint8_t, 3> fill = {0, 0, 0});

}  // namespace rtune::io
