// Spec parsing and running of transform pipelines (see pipeline.h).
#include "io/transforms/pipeline.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "engine/error.h"

namespace rtune::io {

std::string_view pipeline_usage() {
  return "transform spec: comma-separated tokens, applied in order, e.g. "
         "'resize=256,center_crop=224,normalize=imagenet'\n"
         "  resize=S | resize=HxW [:nearest|:bilinear]   T.Resize (S: shorter side)\n"
         "  center_crop=S | center_crop=HxW             T.CenterCrop\n"
         "  random_crop=S|HxW[:pad=P][:constant|edge|reflect|symmetric][:fill=V]   T.RandomCrop\n"
         "  random_resized_crop=S|HxW[:scale=A-B][:ratio=A-B][:nearest]           T.RandomResizedCrop\n"
         "  hflip[=P] | vflip[=P]                       T.RandomHorizontalFlip / RandomVerticalFlip (P=0.5)\n"
         "  rotate=D[:bilinear][:fill=V]                T.RandomRotation(D) (nearest by default)\n"
         "  grayscale=P                                 T.RandomGrayscale(P)\n"
         "  jitter=B:C:S:H                              T.ColorJitter(brightness, contrast, saturation, hue)\n"
         "  normalize=imagenet | normalize=M,M,M/S,S,S written as M:M:M/S:S:S   T.Normalize after ToTensor\n"
         "  presets: imagenet-train (random_resized_crop=224,hflip,normalize=imagenet),\n"
         "           imagenet-eval (resize=256,center_crop=224,normalize=imagenet),\n"
         "           cifar-train (random_crop=32:pad=4:reflect,hflip,normalize=imagenet),\n"
         "           cifar-eval (center_crop=32,normalize=imagenet)\n"
         "  a later normalize replaces an earlier one, e.g. cifar-train,normalize=0.5:0.5:0.5/0.5:0.5:0.5";
}

namespace {

[[noreturn]] void bad(std::string_view token, std::string_view why) {
  fail("bad transform spec token '{}': {}\n{}", token, why, pipeline_usage());
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
    if (p == std::string_view::npos) break;
    start = p + 1;
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int parse_int(std::string_view token, std::string_view s, int lo) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) bad(token, fmt::format("'{}' is not an integer", s));
  if (v < lo) bad(token, fmt::format("{} must be >= {}", v, lo));
  return v;
}

double parse_double(std::string_view token, std::string_view s) {
  std::string tmp(s);
  char* end = nullptr;
  double v = std::strtod(tmp.c_str(), &end);
  if (tmp.empty() || end != tmp.c_str() + tmp.size() || !std::isfinite(v))
    bad(token, fmt::format("'{}' is not a number", s));
  return v;
}

double parse_prob(std::string_view token, std::string_view s) {
  double p = parse_double(token, s);
  if (p < 0 || p > 1) bad(token, fmt::format("probability {} is not in [0, 1]", p));
  return p;
}

// "S" -> (S, S); "HxW" -> (H, W).
std::pair<int, int> parse_size(std::string_view token, std::string_view s) {
  size_t x = s.find('x');
  if (x == std::string_view::npos) {
    int v = parse_int(token, s, 1);
    return {v, v};
  }
  return {parse_int(token, s.substr(0, x), 1), parse_int(token, s.substr(x + 1), 1)};
}

std::array<double, 2> parse_range(std::string_view token, std::string_view s) {
  size_t dash = s.find('-', 1);
  if (dash == std::string_view::npos) bad(token, fmt::format("'{}' is not a range A-B", s));
  std::array<double, 2> r{parse_double(token, s.substr(0, dash)), parse_double(token, s.substr(dash + 1))};
  if (!(r[0] > 0 && r[0] <= r[1])) bad(token, fmt::format("range {}-{} must have 0 < A <= B", r[0], r[1]));
  return r;
}

std::array<float, 3> parse_triple(std::string_view token, std::string_view s) {
  auto parts = split(s, ':');
  if (parts.size() != 3) bad(token, "normalize wants three values per group, M:M:M/S:S:S");
  return {float(parse_double(token, parts[0])), float(parse_double(token, parts[1])), float(parse_double(token, parts[2]))};
}

std::string_view preset(std::string_view name) {
  if (name == "imagenet-train") return "random_resized_crop=224,hflip,normalize=imagenet";
  if (name == "imagenet-eval") return "resize=256,center_crop=224,normalize=imagenet";
  // ImageNet statistics: rtune fine-tunes ImageNet weights, whose first layer expects them.
  if (name == "cifar-train") return "random_crop=32:pad=4:reflect,hflip,normalize=imagenet";
  if (name == "cifar-eval") return "center_crop=32,normalize=imagenet";
  return {};
}

void parse_token(std::string_view token, Pipeline& pl) {
  size_t eq = token.find('=');
  std::string_view name = token.substr(0, eq);
  std::string_view value = eq == std::string_view::npos ? std::string_view{} : token.substr(eq + 1);
  bool has_value = eq != std::string_view::npos;
  if (has_value && value.empty()) bad(token, "empty value after '='");
  auto opts = has_value ? split(value, ':') : std::vector<std::string_view>{};
  auto need_value = [&] { if (!has_value) bad(token, fmt::format("'{}' needs a value", name)); };
  auto interp_opt = [&](std::string_view o, Interp& i) {
    if (o == "nearest") i = Interp::nearest;
    else if (o == "bilinear") i = Interp::bilinear;
    else return false;
    return true;
  };
  auto fill_opt = [&](std::string_view o, uint8_t& fill) {
    if (o.substr(0, 5) != "fill=") return false;
    fill = uint8_t(std::min(parse_int(token, o.substr(5), 0), 255));
    if (parse_int(token, o.substr(5), 0) > 255) bad(token, "fill must be in 0..255");
    return true;
  };

  if (name == "resize") {
    need_value();
    Resize r;
    if (opts[0].find('x') == std::string_view::npos) r.size = parse_int(token, opts[0], 1);
    else std::tie(r.height, r.width) = parse_size(token, opts[0]);
    for (size_t i = 1; i < opts.size(); ++i)
      if (!interp_opt(opts[i], r.interp)) bad(token, fmt::format("unknown option '{}'", opts[i]));
    pl.transforms.push_back(r);
  } else if (name == "center_crop") {
    need_value();
    if (opts.size() != 1) bad(token, "center_crop takes only a size");
    auto [h, w] = parse_size(token, opts[0]);
    pl.transforms.push_back(CenterCrop{h, w});
  } else if (name == "random_crop") {
    need_value();
    RandomCrop c;
    std::tie(c.height, c.width) = parse_size(token, opts[0]);
    for (size_t i = 1; i < opts.size(); ++i) {
      std::string_view o = opts[i];
      if (o.substr(0, 4) == "pad=") c.padding = parse_int(token, o.substr(4), 0);
      else if (o == "constant") c.mode = PadMode::constant;
      else if (o == "edge") c.mode = PadMode::edge;
      else if (o == "reflect") c.mode = PadMode::reflect;
      else if (o == "symmetric") c.mode = PadMode::symmetric;
      else if (!fill_opt(o, c.fill)) bad(token, fmt::format("unknown option '{}'", o));
    }
    pl.transforms.push_back(c);
  } else if (name == "random_resized_crop") {
    need_value();
    RandomResizedCrop c;
    std::tie(c.height, c.width) = parse_size(token, opts[0]);
    for (size_t i = 1; i < opts.size(); ++i) {
      std::string_view o = opts[i];
      if (o.substr(0, 6) == "scale=") {
        c.scale = parse_range(token, o.substr(6));
        if (c.scale[1] > 1) bad(token, "scale must lie in (0, 1]");
      } else if (o.substr(0, 6) == "ratio=") {
        c.ratio = parse_range(token, o.substr(6));
      } else if (!interp_opt(o, c.interp)) {
        bad(token, fmt::format("unknown option '{}'", o));
      }
    }
    pl.transforms.push_back(c);
  } else if (name == "hflip" || name == "vflip") {
    double p = has_value ? parse_prob(token, value) : 0.5;
    if (name == "hflip") pl.transforms.push_back(RandomHorizontalFlip{p});
    else pl.transforms.push_back(RandomVerticalFlip{p});
  } else if (name == "rotate") {
    need_value();
    RandomRotation r;
    r.degrees = parse_double(token, opts[0]);
    if (r.degrees < 0) bad(token, "degrees must be >= 0 (the range is -D..D)");
    for (size_t i = 1; i < opts.size(); ++i)
      if (!interp_opt(opts[i], r.interp) && !fill_opt(opts[i], r.fill)) bad(token, fmt::format("unknown option '{}'", opts[i]));
    pl.transforms.push_back(r);
  } else if (name == "grayscale") {
    pl.transforms.push_back(RandomGrayscale{has_value ? parse_prob(token, value) : 0.1});
  } else if (name == "jitter") {
    need_value();
    if (opts.size() != 4) bad(token, "jitter wants four values B:C:S:H");
    ColorJitter j{parse_double(token, opts[0]), parse_double(token, opts[1]), parse_double(token, opts[2]),
                  parse_double(token, opts[3])};
    if (j.brightness < 0 || j.contrast < 0 || j.saturation < 0) bad(token, "jitter factors must be >= 0");
    if (j.hue < 0 || j.hue > 0.5) bad(token, "jitter hue must be in [0, 0.5]");
    pl.transforms.push_back(j);
  } else if (name == "normalize") {
    need_value();
    if (value == "imagenet") {
      pl.normalize = kImageNetNormalize;
    } else {
      auto groups = split(value, '/');
      if (groups.size() != 2) bad(token, "normalize wants 'imagenet' or M:M:M/S:S:S");
      Normalize n{parse_triple(token, groups[0]), parse_triple(token, groups[1])};
      for (float s : n.std)
        if (!(s > 0)) bad(token, "normalize std must be > 0");
      pl.normalize = n;
    }
  } else {
    bad(token, fmt::format("unknown transform '{}'", name));
  }
}

void parse_into(std::string_view spec, Pipeline& pl) {
  for (std::string_view raw : split(spec, ',')) {
    std::string_view token = trim(raw);
    if (token.empty()) bad(raw, "empty token (stray comma?)");
    if (std::string_view p = preset(token); !p.empty()) parse_into(p, pl);
    else parse_token(token, pl);
  }
}

}  // namespace

Pipeline parse_pipeline(std::string_view spec) {
  if (trim(spec).empty()) fail("empty transform spec\n{}", pipeline_usage());
  Pipeline pl;
  parse_into(spec, pl);
  return pl;
}

Image Pipeline::apply(const Image& img, Rng& rng) const {
  Image cur = img;
  for (const Transform& t : transforms) cur = io::apply(t, cur, rng);
  return cur;
}

std::vector<float> Pipeline::apply_to_tensor(const Image& img, Rng& rng) const {
  Image out = apply(img, rng);
  return to_tensor(out, normalize ? &*normalize : nullptr);
}

std::optional<std::pair<int, int>> Pipeline::output_size() const {
  std::optional<std::pair<int, int>> size;
  for (const Transform& t : transforms) {
    if (auto* r = std::get_if<Resize>(&t)) size = r->size > 0 ? std::nullopt : std::optional{std::pair{r->height, r->width}};
    else if (auto* c = std::get_if<CenterCrop>(&t)) size = std::pair{c->height, c->width};
    else if (auto* rc = std::get_if<RandomCrop>(&t)) size = std::pair{rc->height, rc->width};
    else if (auto* rr = std::get_if<RandomResizedCrop>(&t)) size = std::pair{rr->height, rr->width};
  }
  return size;
}

std::optional<std::pair<int, int>> Pipeline::batch_size() const {
  if (auto size = output_size()) return size;
  for (auto t = transforms.rbegin(); t != transforms.rend(); ++t)  // the last transform that sets the size
    if (auto* r = std::get_if<Resize>(&*t)) return std::pair{r->size, r->size};
  return std::nullopt;
}

DecodeHint Pipeline::decode_hint() const {
  DecodeHint h;
  if (transforms.empty()) return h;
  if (auto* r = std::get_if<Resize>(&transforms.front())) {
    if (r->size > 0) h.min_short_side = r->size;
    else h.min_height = r->height, h.min_width = r->width;
  }
  return h;
}

bool Pipeline::deterministic() const {
  return std::all_of(transforms.begin(), transforms.end(), [](const Transform& t) {
    return std::holds_alternative<Resize>(t) || std::holds_alternative<CenterCrop>(t);
  });
}

std::string Pipeline::describe() const {
  std::string s = "Compose(";
  for (const Transform& t : transforms) s += io::describe(t) + ", ";
  s += "ToTensor()";
  if (normalize)
    s += fmt::format(", Normalize(mean={}, std={})", fmt::join(normalize->mean, ", "), fmt::join(normalize->std, ", "));
  return s + ")";
}

}  // namespace rtune::io
