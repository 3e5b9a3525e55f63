// torchvision's random transforms on PIL images (see random.h). The draws happen in torchvision's
// order, so one Rng stream drives a pipeline the way torch's global generator drives T.Compose.
#include "io/transforms/random.h"

#include <cmath>
#include <fmt/format.h>

#include "engine/error.h"
#include "io/transforms/color.h"
#include "io/transforms/resize.h"

namespace rtune::io {

namespace {
// Python's round() for the float -> int conversions torchvision does: half to even.
int py_round(double v) { return int(std::nearbyint(v)); }
const char* interp_name(Interp i) { return i == Interp::nearest ? "nearest" : "bilinear"; }
const char* pad_name(PadMode m) {
  switch (m) {
    case PadMode::constant: return "constant";
    case PadMode::edge: return "edge";
    case PadMode::reflect: return "reflect";
    case PadMode::symmetric: return "symmetric";
  }
  return "?";
}
}  // namespace

CropBox random_resized_crop_params(int height, int width, Rng& rng, std::array<double, 2> scale,
                                   std::array<double, 2> ratio) {
  const double area = double(height) * double(width);
  const double log_r0 = std::log(ratio[0]), log_r1 = std::log(ratio[1]);
  for (int attempt = 0; attempt < 10; ++attempt) {
    double target_area = area * rng.uniform(scale[0], scale[1]);
    double aspect = std::exp(rng.uniform(log_r0, log_r1));
    int w = py_round(std::sqrt(target_area * aspect));
    int h = py_round(std::sqrt(target_area / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      int i = int(rng.randint(0, height - h + 1));
      int j = int(rng.randint(0, width - w + 1));
      return {i, j, h, w};
    }
  }
  // Fallback: the central crop with the aspect ratio clamped to the range.
  double in_ratio = double(width) / double(height);
  int w, h;
  if (in_ratio < std::min(ratio[0], ratio[1])) {
    w = width;
    h = py_round(w / std::min(ratio[0], ratio[1]));
  } else if (in_ratio > std::max(ratio[0], ratio[1])) {
    h = height;
    w = py_round(h * std::max(ratio[0], ratio[1]));
  } else {
    w = width;
    h = height;
  }
  return {(height - h) / 2, (width - w) / 2, h, w};
}

CropBox random_crop_params(int height, int width, int th, int tw, Rng& rng) {
  RTUNE_CHECK(height >= th && width >= tw, "RandomCrop: crop {}x{} is larger than the (padded) image {}x{}", th, tw,
              height, width);
  if (height == th && width == tw) return {0, 0, height, width};
  int i = int(rng.randint(0, height - th + 1));
  int j = int(rng.randint(0, width - tw + 1));
  return {i, j, th, tw};
}

JitterParams color_jitter_params(const ColorJitter& cj, Rng& rng) {
  JitterParams p;
  rng.shuffle(std::span<int>(p.order));
  auto factor = [&](double f) -> std::optional<double> {
    if (f <= 0) return std::nullopt;
    return rng.uniform(std::max(0.0, 1.0 - f), 1.0 + f);
  };
  p.brightness = factor(cj.brightness);
  p.contrast = factor(cj.contrast);
  p.saturation = factor(cj.saturation);
  if (cj.hue > 0) p.hue = rng.uniform(-cj.hue, cj.hue);
  return p;
}

namespace {

struct Applier {
  const Image& img;
  Rng& rng;

  Image operator()(const Resize& t) const {
    return t.size > 0 ? resize_shorter(img, t.size, t.interp) : resize(img, t.height, t.width, t.interp);
  }
  Image operator()(const CenterCrop& t) const { return center_crop(img, t.height, t.width); }
  Image operator()(const RandomCrop& t) const {
    const Image* src = &img;
    Image padded;
    if (t.padding > 0) {
      padded = pad(img, t.padding, t.padding, t.padding, t.padding, t.mode, {t.fill, t.fill, t.fill});
      src = &padded;
    }
    CropBox b = random_crop_params(src->height, src->width, t.height, t.width, rng);
    return crop(*src, b.top, b.left, b.height, b.width);
  }
  Image operator()(const RandomResizedCrop& t) const {
    CropBox b = random_resized_crop_params(img.height, img.width, rng, t.scale, t.ratio);
    return resize(crop(img, b.top, b.left, b.height, b.width), t.height, t.width, t.interp);
  }
  Image operator()(const RandomHorizontalFlip& t) const { return rng.bernoulli(t.p) ? hflip(img) : img; }
  Image operator()(const RandomVerticalFlip& t) const { return rng.bernoulli(t.p) ? vflip(img) : img; }
  Image operator()(const RandomRotation& t) const {
    double angle = rng.uniform(-t.degrees, t.degrees);
    return rotate(img, angle, t.interp, {t.fill, t.fill, t.fill});
  }
  Image operator()(const RandomGrayscale& t) const { return rng.bernoulli(t.p) ? to_grayscale3(img) : img; }
  Image operator()(const ColorJitter& t) const {
    JitterParams p = color_jitter_params(t, rng);
    Image cur = img;
    for (int fn : p.order) {
      if (fn == 0 && p.brightness) cur = adjust_brightness(cur, *p.brightness);
      if (fn == 1 && p.contrast) cur = adjust_contrast(cur, *p.contrast);
      if (fn == 2 && p.saturation) cur = adjust_saturation(cur, *p.saturation);
      if (fn == 3 && p.hue) cur = adjust_hue(cur, *p.hue);
    }
    return cur;
  }
};

struct Describer {
  std::string operator()(const Resize& t) const {
    return t.size > 0 ? fmt::format("Resize({}, {})", t.size, interp_name(t.interp))
                      : fmt::format("Resize(({}, {}), {})", t.height, t.width, interp_name(t.interp));
  }
  std::string operator()(const CenterCrop& t) const { return fmt::format("CenterCrop(({}, {}))", t.height, t.width); }
  std::string operator()(const RandomCrop& t) const {
    return fmt::format("RandomCrop(({}, {}), padding={}, padding_mode={}, fill={})", t.height, t.width, t.padding,
                       pad_name(t.mode), t.fill);
  }
  std::string operator()(const RandomResizedCrop& t) const {
    return fmt::format("RandomResizedCrop(({}, {}), scale=({}, {}), ratio=({:.4f}, {:.4f}), {})", t.height, t.width,
                       t.scale[0], t.scale[1], t.ratio[0], t.ratio[1], interp_name(t.interp));
  }
  std::string operator()(const RandomHorizontalFlip& t) const { return fmt::format("RandomHorizontalFlip(p={})", t.p); }
  std::string operator()(const RandomVerticalFlip& t) const { return fmt::format("RandomVerticalFlip(p={})", t.p); }
  std::string operator()(const RandomRotation& t) const {
    return fmt::format("RandomRotation(({}, {}), {}, fill={})", -t.degrees, t.degrees, interp_name(t.interp), t.fill);
  }
  std::string operator()(const RandomGrayscale& t) const { return fmt::format("RandomGrayscale(p={})", t.p); }
  std::string operator()(const ColorJitter& t) const {
    return fmt::format("ColorJitter(brightness={}, contrast={}, saturation={}, hue={})", t.brightness, t.contrast,
                       t.saturation, t.hue);
  }
};

}  // namespace

Image apply(const Transform& t, const Image& img, Rng& rng) {
  RTUNE_CHECK(!img.empty(), "{}: empty input image", describe(t));
  return std::visit(Applier{img, rng}, t);
}

std::string describe(const Transform& t) { return std::visit(Describer{}, t); }

}  // namespace rtune::io
