#include "finetune/report/html.h"
#include <algorithm>
#include <fmt/format.h>
#include "io/formats/checkpoint.h"
#include "io/image/png_write.h"
#include "finetune/report/svg.h"

namespace rtune::finetune {

std::string image_grid_html(const std::vector<ImageTile>& tiles, int tile_px) {
  std::string h = "<div class=\"grid\">\n";
  for (const auto& t : tiles) {
    if (t.image.width <= 0 || t.image.height <= 0) {  // a sample whose file does not decode: marked, not drawn
      h += fmt::format("<figure class=\"tile broken\"><div style=\"width:{}px;height:{}px\">does not decode</div>"
                       "<figcaption>{}</figcaption></figure>\n",
                       tile_px, tile_px, html_escape(t.caption));
      continue;
    }
    const int factor = std::max(1, tile_px / std::max(1, t.image.width));
    const char* cls = t.mark > 0 ? " ok" : t.mark < 0 ? " bad" : "";
    h += fmt::format("<figure class=\"tile{}\"><img src=\"{}\" width=\"{}\" height=\"{}\" alt=\"\"><figcaption>{}"
                     "</figcaption></figure>\n",
                     cls, io::png_data_uri(io::upscale(t.image, factor)), t.image.width * factor, t.image.height * factor,
                     html_escape(t.caption));
  }
  return h + "</div>\n";
}

std::string table_html(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::string h = "<table>\n";
  if (!header.empty()) {
    h += "<tr>";
    for (auto& c : header) h += "<th>" + html_escape(c) + "</th>";
    h += "</tr>\n";
  }
  for (auto& r : rows) {
    h += "<tr>";
    for (auto& c : r) h += "<td>" + html_escape(c) + "</td>";
    h += "</tr>\n";
  }
  return h + "</table>\n";
}

std::string render_report(const Report& r) {
  std::string h = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n"
      "body{{font-family:sans-serif;margin:24px;max-width:1250px;color:#222}}\n"
      "h1{{font-size:22px}} h2{{font-size:17px;border-bottom:1px solid #ccc;padding-bottom:3px;margin-top:28px}}\n"
      "table{{border-collapse:collapse;font-size:13px}} td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}\n"
      ".charts{{display:flex;flex-wrap:wrap;gap:12px}}\n"
      ".grid{{display:flex;flex-wrap:wrap;gap:8px}} .tile{{margin:0;padding:3px;border:2px solid #ddd;font-size:11px;"
      "text-align:center;max-width:140px}}\n"
      ".tile.ok{{border-color:#2ca02c}} .tile.bad{{border-color:#d62728}} .tile.broken{{border-style:dashed;color:#888}}\n"
      ".tile.broken div{{display:flex;align-items:center;justify-content:center;margin:auto}} img{{image-rendering:pixelated;display:block;"
      "margin:auto}}\n"
      "</style></head><body>\n<h1>{}</h1>\n",
      html_escape(r.title), html_escape(r.title));
  if (!r.facts.empty()) {
    std::vector<std::vector<std::string>> rows;
    for (auto& [k, v] : r.facts) rows.push_back({k, v});
    h += table_html({}, rows);
  }
  for (auto& s : r.sections) h += fmt::format("<h2>{}</h2>\n{}", html_escape(s.title), s.html);
  return h + "<p style=\"color:#888;font-size:11px\">Written by rtune " RTUNE_VERSION
             ". Self-contained: no scripts, no network.</p>\n</body></html>\n";
}

void write_report(const std::filesystem::path& path, const Report& r) {
  std::string html = render_report(r);
  io::write_file_atomic(path, std::as_bytes(std::span(html.data(), html.size())));
}

}  // namespace rtune::finetune
