// A self-contained HTML report: one file, inline CSS and SVG, images as base64 PNG data URIs, no
// scripts and no network access, so it can be mailed or opened offline.
#pragma once
#include <filesystem>
#include <string>
#include <utility>
#include <vector>
#include "io/image/image.h"

namespace rtune::finetune {

struct ImageTile {
  io::Image image;  // empty (0 x 0): the sample's file does not decode; drawn as a marked placeholder
  std::string caption;
  int mark = 0;  // 0 plain, 1 correct (green frame), -1 wrong (red frame)
};
struct ReportSection {
  std::string title;
  std::string html;  // trusted markup (charts, tables built by the caller with html_escape)
};
struct Report {
  std::string title;
  std::vector<std::pair<std::string, std::string>> facts;  // key/value table at the top (escaped)
  std::vector<ReportSection> sections;
};

// A grid of tiles, each image upscaled by an integer factor to about `tile_px` pixels wide.
std::string image_grid_html(const std::vector<ImageTile>& tiles, int tile_px = 96);
// A simple table; cells are escaped. `header` may be empty.
std::string table_html(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);
std::string render_report(const Report& r);
// Writes atomically (temp + rename), so a browser never sees a half-written report.
void write_report(const std::filesystem::path& path, const Report& r);

}  // namespace rtune::finetune
