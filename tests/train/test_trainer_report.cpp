// The run folder's logs and report pieces: base64 (RFC 4648 vectors), PNG round trip through the
// project's decoder, SVG charts (unfreeze markers, one LR line per group) and confusion matrix,
// metrics.jsonl/csv with group LRs, steps.csv, confusion.json, the prediction grid's selection (every
// class, mistakes first), and the synthetic data generator's determinism.
#include <doctest/doctest.h>
#include <regex>
#include "finetune/synthetic.h"
#include "io/image/decode.h"
#include "finetune/report/html.h"
#include "finetune/report/metrics_log.h"
#include "finetune/report/run_report.h"
#include "finetune/val_samples.h"
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

TEST_CASE("prediction grid selection: every class present, mistakes first, bounded, deterministic") {
  // 3 classes in loader order: class 0 has 6 images (2 wrong), class 1 has 1 (right), class 2 has 5 (all right).
  std::vector<finetune::ValPrediction> preds;
  int64_t idx = 0;
  auto add = [&](int64_t label, int64_t pred) { preds.push_back({idx++, label, pred, 0.5}); };
  for (int k = 0; k < 4; ++k) add(0, 0);
  add(0, 2), add(0, 1);  // the mistakes come last in loader order: a "first k" selection would miss them
  add(1, 1);
  for (int k = 0; k < 5; ++k) add(2, 2);
  finetune::ValSampleSelector sel(3, 6);
  for (auto& p : preds) sel.add(p);
  auto out = sel.selection();
  // Round 0: class 0's first mistake (4), class 1 (6), class 2 (7); round 1: class 0's second mistake (5),
  // class 2 (8); round 2: class 0's first correct (0). Then mistakes first, each part in that order.
  std::vector<int64_t> got;
  for (auto& p : out) got.push_back(p.index);
  CHECK(got == std::vector<int64_t>{4, 5, 6, 7, 8, 0});
  CHECK_FALSE(out[0].correct());
  CHECK_FALSE(out[1].correct());
  for (size_t i = 2; i < out.size(); ++i) CHECK(out[i].correct());

  // Bounded: 2 kept of 12, still from two classes; fewer predictions than `keep`: all of them.
  finetune::ValSampleSelector small(3, 2);
  for (auto& p : preds) small.add(p);
  auto two = small.selection();
  REQUIRE(two.size() == 2);
  CHECK(two[0].index == 4);
  CHECK(two[1].index == 6);
  finetune::ValSampleSelector big(3, 100);
  for (auto& p : preds) big.add(p);
  CHECK(big.selection().size() == preds.size());
  CHECK(finetune::ValSampleSelector(3, 0).selection().empty());
  CHECK_FALSE(small.wants(-1, true));
  CHECK_THROWS_AS(small.add({0, 3, 0, 1.0}), Error);
}

TEST_CASE("line chart markers: a dashed line and its label inside the x range, none outside") {
  finetune::Series a{"loss", {1, 2, 3, 4}, {1.0, 0.5, 0.4, 0.25}};
  std::string svg = finetune::line_chart_svg(
      {a}, {.title = "t", .markers = {{2.5, "unfreeze <e3>"}, {9, "outside"}, {0.5, "before"}}});
  CHECK(count(svg, "<line class=\"marker\"") == 1);
  CHECK(svg.find("unfreeze &lt;e3&gt;") != std::string::npos);
  CHECK(svg.find("outside") == std::string::npos);
  CHECK(svg.find("before") == std::string::npos);
}

namespace {
// 3 epochs of 2 steps, unfrozen from epoch 3; groups backbone (frozen until then) and head.
std::vector<finetune::EpochRecord> unfreeze_history() {
  std::vector<finetune::EpochRecord> h(3);
  for (int e = 0; e < 3; ++e) {
    h[size_t(e)].epoch = e + 1;
    h[size_t(e)].phase = e < 2 ? 0 : 1;
    h[size_t(e)].lr = e < 2 ? 0.1 : 0.01;
    h[size_t(e)].group_lrs = {{"backbone", e < 2 ? NAN : 0.001}, {"head", h[size_t(e)].lr}};
  }
  return h;
}
std::vector<finetune::StepRecord> unfreeze_steps() {
  std::vector<finetune::StepRecord> s;
  for (int64_t i = 0; i < 6; ++i) {
    const bool unfrozen = i >= 4;
    s.push_back({i, i / 2 + 1, 2.0 - 0.1 * double(i), unfrozen ? 0.01 : 0.1, {unfrozen ? 0.001 : NAN, unfrozen ? 0.01 : 0.1}});
  }
  return s;
}
}  // namespace

TEST_CASE("run charts: the unfreeze marked on the epoch and step curves, one LR line per parameter group") {
  const std::string h = finetune::run_charts_html(unfreeze_history(), unfreeze_steps(), {"backbone", "head"});
  // Four charts, each marked: between epochs 2 and 3 (x = 2.5) and before step 5 (x = 4.5).
  CHECK(count(h, "<line class=\"marker\"") == 4);
  CHECK(count(h, "unfreeze (epoch 3)") == 4);
  CHECK(h.find("backbone LR") != std::string::npos);
  CHECK(h.find("head LR") != std::string::npos);
  CHECK(h.find("nan") == std::string::npos);
  // The LR chart has two polylines; the backbone's has only the 2 unfrozen steps' points.
  const size_t lr_chart = h.find("Learning rate per parameter group");
  REQUIRE(lr_chart != std::string::npos);
  const std::string lr_svg = h.substr(lr_chart, h.find("</svg>", lr_chart) - lr_chart);
  CHECK(count(lr_svg, "<polyline") == 2);
  std::smatch m;
  REQUIRE(std::regex_search(lr_svg, m, std::regex("points=\"([^\"]*)\"")));
  CHECK(count(m[1].str(), ",") == 2);
  // Without a phase change there is no marker.
  auto frozen = unfreeze_history();
  frozen.pop_back();
  CHECK(count(finetune::run_charts_html(frozen, {}, {}), "class=\"marker\"") == 0);
  // Steps without group LRs (an older checkpoint) still draw the head LR.
  auto old = unfreeze_steps();
  for (auto& s : old) s.group_lrs.clear();
  CHECK(finetune::run_charts_html(frozen, old, {"backbone", "head"}).find("head LR") != std::string::npos);
}

TEST_CASE("group LRs in metrics.jsonl/csv: in the optimizer's order, a frozen group null / empty, round trip") {
  const auto h = unfreeze_history();
  const std::string jl = finetune::metrics_jsonl(h);
  auto j1 = nlohmann::json::parse(jl.substr(0, jl.find('\n')));
  REQUIRE(j1["group_lrs"].size() == 2);
  CHECK(j1["group_lrs"][0]["group"] == "backbone");
  CHECK(j1["group_lrs"][0]["lr"].is_null());
  CHECK(j1["group_lrs"][1]["lr"].get<double>() == 0.1);
  auto back = finetune::EpochRecord::from_json(nlohmann::json::parse(finetune::metrics_jsonl({h[2]})));
  REQUIRE(back.group_lrs.size() == 2);
  CHECK(back.group_lrs[0] == std::pair<std::string, double>{"backbone", 0.001});
  CHECK(std::isnan(finetune::EpochRecord::from_json(j1).group_lrs[0].second));
  const std::string csv = finetune::metrics_csv(h);
  CHECK(csv.find("best,lr_backbone,lr_head\n") != std::string::npos);
  CHECK(csv.find(",0,,0.10000000000000001\n") != std::string::npos);               // epoch 1: backbone frozen
  CHECK(csv.find(",0,0.001,0.01\n") != std::string::npos);                          // epoch 3
}

TEST_CASE("steps.csv: one row per step, 1-based steps, exact losses, every group's LR") {
  const std::string csv = finetune::steps_csv({"backbone", "head"}, unfreeze_steps());
  CHECK(count(csv, "\n") == 1 + 6);
  CHECK(csv.rfind("step,epoch,loss,lr_backbone,lr_head\n", 0) == 0);
  CHECK(csv.find("\n1,1,2,,0.10000000000000001\n") != std::string::npos);
  CHECK(csv.find("\n6,3,1.5,0.001,0.01\n") != std::string::npos);
  auto old = unfreeze_steps();
  old[0].group_lrs.clear();  // restored from a checkpoint without group LRs
  CHECK(finetune::steps_csv({"backbone", "head"}, old).find("\n1,1,2,,\n") != std::string::npos);
}

TEST_CASE("confusion.json: counts per (true, predicted), rows by true class, names and epoch") {
  // 5 samples of 3 classes: true 0 -> 0, 0 -> 1, 1 -> 1, 2 -> 0, 2 -> 0 (argmax of each logits row).
  finetune::EvalResult e{finetune::ClassMetrics(3), {}};
  Tensor logits = from_vector({3, 1, 0, 0, 2, 1, 0, 5, 1, 4, 0, 1, 2, 1, 1}, {5, 3});
  e.metrics.add(logits, from_vector_i64({0, 0, 1, 2, 2}, {5}), 1.0);
  auto j = nlohmann::json::parse(finetune::confusion_json(e, 4, {"a", "b", "c"}));
  CHECK(j["epoch"] == 4);
  CHECK(j["count"] == 5);
  CHECK(j["top1"].get<double>() == 0.4);
  CHECK(j["classes"] == nlohmann::json({"a", "b", "c"}));
  CHECK(j["matrix"] == nlohmann::json({{1, 1, 0}, {0, 1, 0}, {2, 0, 0}}));
  CHECK_THROWS_AS(finetune::confusion_json(e, 4, {"a", "b"}), Error);
}
