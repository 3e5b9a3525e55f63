#include "finetune/synthetic.h"
#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include "engine/error.h"
#include "io/image/png_write.h"
#include "engine/rng.h"

namespace rtune::finetune::synth {

namespace {
enum class Shape { circle, square, triangle, cross, ellipse, rectangle };

// Inside test in the shape's unit frame (u, v in [-1, 1] cover the shape's box).
bool inside(Shape s, double u, double v) {
  switch (s) {
    case Shape::circle: return u * u + v * v <= 1.0;
    case Shape::ellipse: return u * u + v * v * 4.0 <= 1.0;  // 2:1
    case Shape::square: return std::abs(u) <= 0.8 && std::abs(v) <= 0.8;
    case Shape::rectangle: return std::abs(u) <= 0.95 && std::abs(v) <= 0.45;
    case Shape::triangle: return v <= 0.8 && 1.8 * std::abs(u) <= v + 1.0;  // apex up
    case Shape::cross: return (std::abs(u) <= 0.3 && std::abs(v) <= 0.95) || (std::abs(v) <= 0.3 && std::abs(u) <= 0.95);
  }
  return false;
}

Shape shape_for(Task t, int label, Rng& rng) {
  if (t == Task::shapes) return Shape(label);
  switch (label) {
    case 0: return rng.bernoulli(0.5) ? Shape::circle : Shape::ellipse;
    case 1: return Shape::triangle;
    default: return rng.bernoulli(0.5) ? Shape::square : Shape::rectangle;
  }
}

void random_colour(Rng& rng, double out[3]) {
  for (int c = 0; c < 3; ++c) out[c] = rng.uniform(0, 255);
}
}  // namespace

std::vector<std::string> class_names(Task t) {
  if (t == Task::shapes) return {"circle", "square", "triangle", "cross"};
  return {"round", "three_corners", "four_corners"};
}

io::Image render(Task t, int label, int size, uint64_t seed, uint64_t index) {
  RTUNE_CHECK(size >= 8, "synthetic: image size {} is too small (>= 8)", size);
  RTUNE_CHECK(label >= 0 && label < int(class_names(t).size()), "synthetic: label {} out of range", label);
  Rng rng = Rng::for_key(seed, uint64_t(t) * 1000003u + uint64_t(label), index);
  const Shape shape = shape_for(t, label, rng);
  double bg0[3], bg1[3], fg[3];
  // A low-contrast two-tone background: texture to ignore, not a second shape.
  random_colour(rng, bg0);
  for (int c = 0; c < 3; ++c) bg1[c] = std::clamp(bg0[c] + rng.uniform(-45, 45), 0.0, 255.0);
  // Keep the shape visible: its colour is pushed away from the mean background colour.
  random_colour(rng, fg);
  double dist = 0;
  for (int c = 0; c < 3; ++c) dist += std::abs(fg[c] - (bg0[c] + bg1[c]) / 2);
  if (dist < 200)
    for (int c = 0; c < 3; ++c) fg[c] = (bg0[c] + bg1[c]) / 2 < 128 ? rng.uniform(150, 255) : rng.uniform(0, 105);
  const double radius = size * rng.uniform(0.26, 0.40);
  const double cx = rng.uniform(radius, size - radius), cy = rng.uniform(radius, size - radius);
  const double angle = rng.uniform(-0.2, 0.2), ca = std::cos(angle), sa = std::sin(angle);
  const double freq = rng.uniform(0.2, 0.9), phase = rng.uniform(0, 6.3);
  io::Image img(size, size);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      // Two-tone texture: a random-frequency stripe/noise mix between two colours.
      double w = 0.5 + 0.5 * std::sin(freq * x + phase) * std::cos(freq * 0.7 * y + phase);
      w = std::clamp(w + rng.uniform(-0.2, 0.2), 0.0, 1.0);
      int hits = 0;  // 2x2 supersampling for soft edges
      for (int sy = 0; sy < 2; ++sy)
        for (int sx = 0; sx < 2; ++sx) {
          double dx = (x + 0.25 + 0.5 * sx - cx) / radius, dy = (y + 0.25 + 0.5 * sy - cy) / radius;
          hits += inside(shape, ca * dx + sa * dy, -sa * dx + ca * dy);
        }
      const double a = hits / 4.0;
      uint8_t* p = img.at(y, x);
      for (int c = 0; c < 3; ++c) {
        double bg = bg0[c] * w + bg1[c] * (1 - w);
        p[c] = uint8_t(std::lround(std::clamp(bg * (1 - a) + fg[c] * a, 0.0, 255.0)));
      }
    }
  return img;
}

int64_t write_image_folder(const std::filesystem::path& root, Task t, int per_class, int size, uint64_t seed) {
  RTUNE_CHECK(per_class >= 1, "synthetic: per_class must be >= 1");
  auto names = class_names(t);
  int64_t n = 0;
  for (int c = 0; c < int(names.size()); ++c) {
    std::filesystem::create_directories(root / names[size_t(c)]);
    for (int i = 0; i < per_class; ++i, ++n)
      io::write_png(root / names[size_t(c)] / fmt::format("{:04d}.png", i), render(t, c, size, seed, uint64_t(i)));
  }
  return n;
}

}  // namespace rtune::finetune::synth
