// The per-pixel kernels behind io/transforms/color.h, exposed so tests/data/test_color_exact.cpp can
// check them against a plain copy of Pillow's formulas over every RGB triplet. They are bit-exact with
// Pillow's ImagingBlend (Blend.c) and rgb2hsv_row/hsv2rgb (Convert.c); only the evaluation order
// across pixels (blocks the compiler vectorises, selects instead of branches) differs.
#pragma once
#include <cstddef>
#include <cstdint>

namespace rtune::io::color_kernels {

// o[i] = ImagingBlend(a[i], b[i], alpha) for n bytes: uint8(a + alpha * (b - a)) in float, clipped
// to [0, 255] when alpha is outside [0, 1].
void blend_bytes(const uint8_t* a, const uint8_t* b, uint8_t* o, size_t n, float alpha);

// blend_bytes with a constant degenerate byte (brightness: 0, contrast: the rounded mean luma).
void blend_const(const uint8_t* in, uint8_t* out, size_t n_bytes, uint8_t degenerate, float alpha);

// blend_bytes with each pixel's own luma replicated to 3 channels as the degenerate (saturation).
void blend_gray(const uint8_t* in, uint8_t* out, size_t n_pixels, float alpha);

// RGB -> Pillow HSV, H += shift (mod 256), HSV -> RGB, for n_pixels packed RGB pixels.
void hue_shift(const uint8_t* in, uint8_t* out, size_t n_pixels, uint8_t shift);

}  // namespace rtune::io::color_kernels
