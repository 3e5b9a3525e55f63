// The random transforms of torchvision.transforms, with their parameter sampling algorithms
// (RandomResizedCrop.get_params with its 10 tries and central-crop fallback, RandomCrop.get_params,
// ColorJitter.get_params with its random order) drawing from an explicit Rng instead of torch's.
#pragma once
#include <array>
#include <optional>
#include <string>
#include <variant>

#include "io/image/image.h"
#include "io/transforms/geometry.h"
#include "engine/rng.h"

namespace rtune::io {

// T.RandomResizedCrop.get_params: scale and ratio ranges as torchvision's defaults.
CropBox random_resized_crop_params(int height, int width, Rng& rng, std::array<double, 2> scale = {0.08, 1.0},
                                   std::array<double, 2> ratio = {3.0 / 4.0, 4.0 / 3.0});

// T.RandomCrop.get_params: a uniform top-left corner; the image must be at least th x tw.
CropBox random_crop_params(int height, int width, int th, int tw, Rng& rng);

// T.ColorJitter.get_params: the order the four adjustments run in, and each factor (absent = off).
struct JitterParams {
  std::array<int, 4> order{0, 1, 2, 3};  // 0 brightness, 1 contrast, 2 saturation, 3 hue
  std::optional<double> brightness, contrast, saturation, hue;
};

// ---- the transforms (torchvision class names); each is applied by apply() below ----

struct Resize {  // T.Resize(size) (shorter side) when size > 0, else T.Resize((height, width))
  int size = 0, height = 0, width = 0;
  Interp interp = Interp::bilinear;
};
struct CenterCrop { int height = 0, width = 0; };
struct RandomCrop {  // T.RandomCrop(size, padding, fill, padding_mode)
  int height = 0, width = 0, padding = 0;
  PadMode mode = PadMode::constant;
  uint8_t fill = 0;
};
struct RandomResizedCrop {
  int height = 0, width = 0;
  std::array<double, 2> scale{0.08, 1.0}, ratio{3.0 / 4.0, 4.0 / 3.0};
  Interp interp = Interp::bilinear;
};
struct RandomHorizontalFlip { double p = 0.5; };
struct RandomVerticalFlip { double p = 0.5; };
struct RandomRotation {  // angle ~ U(-degrees, degrees), expand=False, centre rotation
  double degrees = 0;
  Interp interp = Interp::nearest;
  uint8_t fill = 0;
};
struct RandomGrayscale { double p = 0.1; };
struct ColorJitter {  // each factor f gives U(max(0, 1 - f), 1 + f); hue h gives U(-h, h); 0 = off
  double brightness = 0, contrast = 0, saturation = 0, hue = 0;
};

using Transform = std::variant<Resize, CenterCrop, RandomCrop, RandomResizedCrop, RandomHorizontalFlip,
                               RandomVerticalFlip, RandomRotation, RandomGrayscale, ColorJitter>;

JitterParams color_jitter_params(const ColorJitter& cj, Rng& rng);

Image apply(const Transform& t, const Image& img, Rng& rng);
std::string describe(const Transform& t);

}  // namespace rtune::io
