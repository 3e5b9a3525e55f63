// Resize equal to torchvision's F.resize on a PIL image, i.e. PIL's Image.resize:
//  - bilinear: ImagingResample, separable triangle filter whose support grows with the shrink ratio
//    (antialiasing), 22-bit fixed-point coefficients, horizontal pass then vertical pass, each
//    rounded to 8 bits; vertical pass first when the height shrinks by more than twice what the width
//    shrinks, in_h - out_h > 2 (in_w - out_w) (pixel-exact with Pillow 13.0);
//  - nearest: ImagingScaleAffine, source = floor((x + 0.5) * in/out) accumulated as Pillow does.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "io/image/image.h"

namespace rtune::io {

enum class Interp { nearest, bilinear };

// PIL img.resize((out_w, out_h), BILINEAR or NEAREST). Same size returns a copy.
Image resize(const Image& in, int out_h, int out_w, Interp interp = Interp::bilinear);

// The general form, into caller-owned memory (the loader). `pixels` holds rows [pixels_top, ...) and
// columns [pixels_left, ...) of some larger image (0, 0: the image itself; else e.g. a partially
// decoded JPEG);
// the `region` of that image (its coordinates) is resized to out_h x out_w, and only the rectangle
// `out_box` of the result is computed, into `out` (out_box.height x out_box.width x 3 bytes):
// crop(resize(crop(image, region), out_h, out_w), out_box), pixel for pixel. `pixels` must hold every
// pixel resize_source_box() names.
void resize_into(ImageView pixels, int pixels_top, int pixels_left, const CropBox& region, int out_h, int out_w,
                 const CropBox& out_box, Interp interp, uint8_t* out, std::vector<uint8_t>& scratch);

// The input pixels (in the in_h x in_w input's coordinates) that `out_box` of an in_h x in_w ->
// out_h x out_w resize reads: what a partial decode must deliver.
CropBox resize_source_box(int in_h, int in_w, int out_h, int out_w, const CropBox& out_box, Interp interp);

// torchvision's _compute_resized_output_size for an int size: the shorter side becomes `size`,
// the longer int(size * long / short). Returns {height, width}.
std::pair<int, int> shorter_side_size(int height, int width, int size);

// Resize(size) with an int: shorter side to `size`, aspect kept.
Image resize_shorter(const Image& in, int size, Interp interp = Interp::bilinear);

}  // namespace rtune::io
