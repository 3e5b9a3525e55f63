// Inline SVG charts for the self-contained HTML report (no scripts, no network): line charts with
// axes, ticks, a legend and vertical markers, and a confusion-matrix heat map with counts.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rtune::finetune {

struct Series {
  std::string name;
  std::vector<double> x, y;  // same length; non-finite points are skipped
  std::string color;         // "" = from the palette
  bool dashed = false;
};
struct ChartMarker {  // a labelled vertical dashed line, e.g. where the backbone was unfrozen
  double x = 0;
  std::string label;
};
struct ChartOptions {
  std::string title, xlabel, ylabel;
  int width = 560, height = 300;
  bool y_from_zero = false;
  bool log_y = false;        // for LR curves spanning decades (non-positive values skipped)
  double y_min = 0, y_max = 0;  // fixed range when y_max > y_min (e.g. accuracy 0..1)
  std::vector<ChartMarker> markers = {};  // drawn when inside the data's x range
};

std::string html_escape(std::string_view s);
std::string line_chart_svg(const std::vector<Series>& series, const ChartOptions& o);
// m[t * C + p]: count of true class t predicted as p. Rows are normalised for the colour.
std::string confusion_svg(const std::vector<int64_t>& m, const std::vector<std::string>& names, const std::string& title);
// "Nice" tick values covering [lo, hi] (about `n` of them), for axes.
std::vector<double> nice_ticks(double lo, double hi, int n);

}  // namespace rtune::finetune
