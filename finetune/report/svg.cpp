#include "finetune/report/svg.h"
#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include "engine/error.h"

namespace rtune::finetune {

namespace {
const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
std::string num(double v) {
  if (v != 0 && (std::abs(v) < 1e-3 || std::abs(v) >= 1e5)) return fmt::format("{:.1e}", v);
  return fmt::format("{:.4g}", v);
}
}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int n) {
  if (!(hi > lo)) return {lo};
  double raw = (hi - lo) / std::max(1, n);
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
  return t;
}

std::string line_chart_svg(const std::vector<Series>& series, const ChartOptions& o) {
  const double ml = 62, mr = 16, mt = 28, mb = 42;
  const double pw = o.width - ml - mr, ph = o.height - mt - mb;
  auto ty = [&](double y) { return o.log_y ? std::log10(y) : y; };
  auto ok = [&](double x, double y) { return std::isfinite(x) && std::isfinite(y) && (!o.log_y || y > 0); };
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (auto& s : series) {
    RTUNE_CHECK(s.x.size() == s.y.size(), "chart '{}': series '{}' has {} x and {} y values", o.title, s.name, s.x.size(),
                s.y.size());
    for (size_t i = 0; i < s.x.size(); ++i)
      if (ok(s.x[i], s.y[i])) {
        x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
        y0 = std::min(y0, ty(s.y[i])), y1 = std::max(y1, ty(s.y[i]));
      }
  }
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"17\" font-size=\"13\" font-weight=\"bold\" text-anchor=\"middle\">{}</text>\n",
      o.width, o.height, o.width, o.height, o.width / 2, html_escape(o.title));
  if (!(x0 <= x1)) return svg + "<text x=\"50%\" y=\"50%\" text-anchor=\"middle\">no data</text></svg>\n";
  if (o.y_max > o.y_min) y0 = ty(o.y_min), y1 = ty(o.y_max);
  if (o.y_from_zero && !o.log_y) y0 = std::min(y0, 0.0);
  if (x1 == x0) x0 -= 0.5, x1 += 0.5;
  if (y1 == y0) y0 -= 0.5, y1 += 0.5;
  const double pad = (y1 - y0) * 0.04;
  if (!(o.y_max > o.y_min)) y0 -= o.y_from_zero && y0 == 0 ? 0 : pad, y1 += pad;
  auto px = [&](double x) { return ml + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return mt + ph - (ty(y) - y0) / (y1 - y0) * ph; };
  // Grid and ticks.
  svg += fmt::format("<g stroke=\"#ddd\">\n");
  std::vector<double> yt;
  if (o.log_y) {
    for (double e = std::ceil(y0); e <= y1 + 1e-9; e += 1) yt.push_back(std::pow(10.0, e));
    if (yt.size() < 2) yt = {std::pow(10.0, y0), std::pow(10.0, y1)};
  } else {
    yt = nice_ticks(y0, y1, 5);
  }
  for (double v : yt) svg += fmt::format("<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\"/>\n", ml, ml + pw, py(v), py(v));
  auto xt = nice_ticks(x0, x1, 6);
  for (double v : xt) svg += fmt::format("<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\"/>\n", px(v), px(v), mt, mt + ph);
  svg += "</g>\n";
  for (double v : yt)
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", ml - 4, py(v) + 4, num(v));
  for (double v : xt)
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", px(v), mt + ph + 14, num(v));
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n", ml, mt, pw, ph);
  svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", ml + pw / 2, o.height - 6,
                     html_escape(o.xlabel));
  svg += fmt::format("<text transform=\"translate(14,{:.1f}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n", mt + ph / 2,
                     html_escape(o.ylabel));
  for (const auto& m : o.markers) {
    if (!(m.x >= x0 && m.x <= x1)) continue;
    svg += fmt::format("<line class=\"marker\" x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#555\" "
                       "stroke-dasharray=\"4,3\"/>\n<text class=\"marker\" x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#555\">{}</text>\n",
                       px(m.x), px(m.x), mt, mt + ph, px(m.x) + 3, mt + ph - 4, html_escape(m.label));
  }
  // Lines, then the legend on a translucent box sized to the longest name.
  size_t longest = 0;
  for (auto& s : series) longest = std::max(longest, s.name.size());
  const double lw = 34 + 6.3 * double(longest), lx = ml + pw - lw - 4;
  std::string legend = fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"white\" "
                                   "fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n",
                                   lx, mt + 2, lw, 14.0 * double(series.size()) + 6);
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    const std::string color = s.color.empty() ? kPalette[k % 8] : s.color;
    std::string pts;
    size_t npts = 0;
    for (size_t i = 0; i < s.x.size(); ++i)
      if (ok(s.x[i], s.y[i])) pts += fmt::format("{:.1f},{:.1f} ", px(s.x[i]), py(s.y[i])), ++npts;
    svg += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\"{} points=\"{}\"/>\n", color,
                       s.dashed ? " stroke-dasharray=\"5,3\"" : "", pts);
    if (npts <= 40)  // few points (per-epoch curves): mark them
      for (size_t i = 0; i < s.x.size(); ++i)
        if (ok(s.x[i], s.y[i]))
          svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"{}\"/>\n", px(s.x[i]), py(s.y[i]), color);
    const double ly = mt + 12 + 14 * double(k);
    legend += fmt::format("<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"2\"{}/>"
                       "<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
                       lx + 6, lx + 26, ly, ly, color, s.dashed ? " stroke-dasharray=\"5,3\"" : "", lx + 30, ly + 4,
                       html_escape(s.name));
  }
  return svg + legend + "</svg>\n";
}

std::string confusion_svg(const std::vector<int64_t>& m, const std::vector<std::string>& names, const std::string& title) {
  const size_t c = names.size();
  RTUNE_CHECK(m.size() == c * c, "confusion matrix: {} cells for {} classes", m.size(), c);
  const double cell = c <= 10 ? 44 : c <= 30 ? 18 : 8;
  size_t longest = 0;
  for (auto& n : names) longest = std::max(longest, n.size());
  const double label = c <= 30 ? std::min(160.0, 7.0 * double(longest) + 10) : 10;
  const double x0 = label + 24, y0 = label + 40;
  const double w = x0 + cell * double(c) + 10, h = y0 + cell * double(c) + 10;
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" font-family=\"sans-serif\" "
      "font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{:.1f}\" y=\"16\" font-size=\"13\" font-weight=\"bold\">{}</text>\n"
      "<text x=\"{:.1f}\" y=\"32\">predicted →</text>\n"
      "<text transform=\"translate(12,{:.1f}) rotate(-90)\" text-anchor=\"middle\">true</text>\n",
      w, h, 4.0, html_escape(title), x0, y0 + cell * double(c) / 2);
  for (size_t t = 0; t < c; ++t) {
    int64_t row = 0;
    for (size_t p = 0; p < c; ++p) row += m[t * c + p];
    for (size_t p = 0; p < c; ++p) {
      const int64_t v = m[t * c + p];
      const double f = row ? double(v) / double(row) : 0;
      // white -> blue for the diagonal, white -> red for mistakes
      const int r = t == p ? int(255 - 200 * f) : 255, g = int(255 - 200 * f), b = t == p ? 255 : int(255 - 200 * f);
      svg += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"rgb({},{},{})\" "
                         "stroke=\"#eee\"><title>true {} / predicted {}: {}</title></rect>\n",
                         x0 + cell * double(p), y0 + cell * double(t), cell, cell, r, g, b, html_escape(names[t]),
                         html_escape(names[p]), v);
      if (cell >= 18 && v)
        svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"{}\">{}</text>\n",
                           x0 + cell * (double(p) + 0.5), y0 + cell * (double(t) + 0.5) + 4, f > 0.6 ? "white" : "black", v);
    }
  }
  if (c <= 30)
    for (size_t k = 0; k < c; ++k) {
      svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", x0 - 4,
                         y0 + cell * (double(k) + 0.5) + 4, html_escape(names[k]));
      svg += fmt::format("<text transform=\"translate({:.1f},{:.1f}) rotate(-60)\">{}</text>\n",
                         x0 + cell * (double(k) + 0.5), y0 - 4, html_escape(names[k]));
    }
  return svg + "</svg>\n";
}

}  // namespace rtune::finetune
