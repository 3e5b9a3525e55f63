// The run folder's logs and report pieces: base64 (RFC 4648 vectors), PNG round trip through the
// project's decoder, SVG charts and confusion matrix, metrics.jsonl/csv, and the synthetic data
// generator's determinism.
#include <doctest/doctest.h>
#include <regex>
#include "finetune/synthetic.h"
#include "io/image/decode.h"
#include "finetune/report/html.h"
#include "finetune/report/metrics_log.h"
#include "io/image/png_write.h"
#include "finetune/report/svg.h"
#include "tests/core/test_util.h"

using namespace rtune;

namespace {
size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}
std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }
}  // namespace

TEST_CASE("base64: RFC 4648 test vectors") {
  CHECK(io::base64(bytes("")) == "");
  CHECK(io::base64(bytes("f")) == "Zg==");
  CHECK(io::base64(bytes("fo")) == "Zm8=");
  CHECK(io::base64(bytes("foo")) == "Zm9v");
  CHECK(io::base64(bytes("foob")) == "Zm9vYg==");
  CHECK(io::base64(bytes("fooba")) == "Zm9vYmE=");
  CHECK(io::base64(bytes("foobar")) == "Zm9vYmFy");
  CHECK(io::base64({0xff, 0xfe, 0x00}) == "//4A");
}

TEST_CASE("encode_png decodes back to the same pixels; upscale repeats pixels") {
  io::Image img(5, 7);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = uint8_t(i * 29 + 3);
  auto png = io::encode_png(img);
  io::Image back = io::decode_image(std::as_bytes(std::span(png.data(), png.size())), "mem.png");
  REQUIRE(back.height == 5);
  REQUIRE(back.width == 7);
  CHECK(back.pixels == img.pixels);
  io::Image up = io::upscale(img, 3);
  CHECK(up.height == 15);
  CHECK(std::equal(up.at(14, 20), up.at(14, 20) + 3, img.at(4, 6)));
  CHECK(io::png_data_uri(img).rfind("data:image/png;base64,iVBORw0KGgo", 0) == 0);  // the PNG signature
}

TEST_CASE("line chart: one polyline per series, non-finite points skipped, names escaped") {
  finetune::Series a{"loss <train>", {1, 2, 3, 4}, {1.0, 0.5, NAN, 0.25}};
  finetune::Series b{"val", {1, 2}, {0.9, 0.8}};
  std::string svg = finetune::line_chart_svg({a, b}, {.title = "T&C", .xlabel = "epoch", .ylabel = "loss"});
  CHECK(count(svg, "<polyline") == 2);
  std::smatch m;
  REQUIRE(std::regex_search(svg, m, std::regex("points=\"([^\"]*)\"")));
  CHECK(count(m[1].str(), ",") == 3);  // 3 finite points of series a
  CHECK(svg.find("loss &lt;train&gt;") != std::string::npos);
  CHECK(svg.find("T&amp;C") != std::string::npos);
  CHECK(svg.find("nan") == std::string::npos);
  CHECK(finetune::line_chart_svg({}, {.title = "empty"}).find("no data") != std::string::npos);
  CHECK_THROWS_AS(finetune::line_chart_svg({{"bad", {1, 2}, {1}}}, {}), Error);
  auto ticks = finetune::nice_ticks(0.013, 0.97, 5);
  REQUIRE(!ticks.empty());
  CHECK(ticks.front() >= 0.013);
  CHECK(ticks.back() <= 0.97);
  CHECK(ticks[1] - ticks[0] == doctest::Approx(0.2));
}

TEST_CASE("confusion matrix: C x C cells with counts, labels escaped") {
  std::vector<int64_t> m{5, 1, 0, 0, 2, 7, 3, 0, 9};
  std::string svg = finetune::confusion_svg(m, {"a<b", "c", "d"}, "cm");
  CHECK(count(svg, "<rect x=") == 9);
  CHECK(svg.find(">9</text>") != std::string::npos);
  CHECK(svg.find("a&lt;b") != std::string::npos);
  CHECK_THROWS_AS(finetune::confusion_svg(m, {"a", "b"}, "cm"), Error);
}

TEST_CASE("metrics.jsonl and metrics.csv: one line per epoch, exact numbers, empty cells without validation") {
  finetune::EpochRecord r1;
  r1.epoch = 1, r1.train_loss = 0.1 + 0.2, r1.train_top1 = 0.5, r1.lr = 1e-3, r1.has_val = true;
  r1.val_loss = 1.0 / 3, r1.val_top1 = 0.75, r1.val_top5 = 1, r1.best = true;
  finetune::EpochRecord r2 = r1;
  r2.epoch = 2, r2.has_val = false, r2.best = false, r2.phase = 1;
  std::string jl = finetune::metrics_jsonl({r1, r2});
  CHECK(count(jl, "\n") == 2);
  auto j1 = nlohmann::json::parse(jl.substr(0, jl.find('\n')));
  CHECK(j1["train_loss"].get<double>() == 0.1 + 0.2);  // round-trips exactly
  CHECK(j1["val_loss"].get<double>() == 1.0 / 3);
  CHECK(finetune::EpochRecord::from_json(j1).val_top1 == 0.75);
  auto j2 = nlohmann::json::parse(jl.substr(jl.find('\n') + 1));
  CHECK_FALSE(j2.contains("val_top1"));
  std::string csv = finetune::metrics_csv({r1, r2});
  CHECK(count(csv, "\n") == 3);
  CHECK(csv.find("\n2,1,0.30000000000000004,0.5,,,,0.001") != std::string::npos);
}

TEST_CASE("report HTML: self-contained (no scripts, no remote URLs), escaped facts, image tiles framed") {
  finetune::Report r;
  r.title = "run <1>";
  r.facts = {{"model", "resnet18 & co"}};
  r.sections.push_back({"grid", finetune::image_grid_html({{io::Image(4, 4, 200), "ok", 1}, {io::Image(4, 4, 10), "bad", -1}})});
  std::string h = finetune::render_report(r);
  CHECK(h.find("<title>run &lt;1&gt;</title>") != std::string::npos);
  CHECK(h.find("resnet18 &amp; co") != std::string::npos);
  CHECK(count(h, "src=\"data:image/png;base64,") == 2);
  CHECK(h.find("tile ok") != std::string::npos);
  CHECK(h.find("tile bad") != std::string::npos);
  CHECK(h.find("<script") == std::string::npos);
  CHECK(h.find("http") == std::string::npos);
}

TEST_CASE("synthetic tasks: deterministic per (seed, index), classes differ, sizes honoured") {
  using finetune::synth::Task;
  CHECK(finetune::synth::class_names(Task::shapes).size() == 4);
  CHECK(finetune::synth::class_names(Task::families).size() == 3);
  auto a = finetune::synth::render(Task::shapes, 2, 24, 5, 3);
  auto b = finetune::synth::render(Task::shapes, 2, 24, 5, 3);
  CHECK(a.height == 24);
  CHECK(a.pixels == b.pixels);
  CHECK(finetune::synth::render(Task::shapes, 2, 24, 5, 4).pixels != a.pixels);
  CHECK(finetune::synth::render(Task::shapes, 1, 24, 5, 3).pixels != a.pixels);
  CHECK(finetune::synth::render(Task::shapes, 2, 24, 6, 3).pixels != a.pixels);
  CHECK_THROWS_AS(finetune::synth::render(Task::families, 3, 24, 0, 0), Error);
  CHECK_THROWS_AS(finetune::synth::render(Task::shapes, 0, 4, 0, 0), Error);
}
