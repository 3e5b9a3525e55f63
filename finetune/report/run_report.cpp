#include "finetune/report/run_report.h"
#include <algorithm>
#include <fmt/format.h>
#include "engine/error.h"
#include "finetune/report/svg.h"

namespace rtune::finetune {

namespace {
// The sample as the loader makes it; a file that does not decode (its header passed the scan, its
// body is corrupt) gives a placeholder tile naming it, so the report is still written.
ImageTile tile_or_placeholder(const io::Loader& loader, size_t index, uint64_t epoch, const std::string& caption, int mark) {
  if (index >= loader.dataset().samples.size())  // a checkpoint's saved predictions, from another dataset
    return {io::Image(), fmt::format("{}: sample {} is not in the dataset", caption, index), mark};
  try {
    return {loader.load_sample(index, epoch), caption, mark};
  } catch (const Error&) {
    return {io::Image(), fmt::format("{}: {} does not decode", caption, loader.dataset().samples[index].path.filename().string()),
            mark};
  }
}
}  // namespace

std::vector<ImageTile> augmented_tiles(const io::Loader& loader, const io::Dataset& ds, const std::vector<std::string>& names,
                                       int count, uint64_t epoch) {
  std::vector<ImageTile> out;
  const size_t n = ds.samples.size();
  for (int k = 0; k < count && size_t(k) < n; ++k) {
    // Spread over the dataset (ImageFolder lists are sorted by class) so every class shows up.
    const size_t idx = size_t((uint64_t(k) * n) / uint64_t(std::min<size_t>(size_t(count), n)));
    const int64_t label = ds.samples[idx].label;
    const std::string name = size_t(label) < names.size() ? names[size_t(label)] : std::to_string(label);
    out.push_back(tile_or_placeholder(loader, idx, epoch, name, 0));
  }
  return out;
}

std::vector<ImageTile> prediction_tiles(const io::Loader& val, const finetune::EvalResult& eval,
                                        const std::vector<std::string>& names) {
  auto name = [&](int64_t c) { return size_t(c) < names.size() ? names[size_t(c)] : std::to_string(c); };
  std::vector<ImageTile> out;
  for (const auto& p : eval.samples) {
    const bool ok = p.label == p.pred;
    std::string cap = ok ? fmt::format("{} ({:.0f}%)", name(p.pred), 100 * p.prob)
                         : fmt::format("{} → {} ({:.0f}%)", name(p.label), name(p.pred), 100 * p.prob);
    out.push_back(tile_or_placeholder(val, size_t(p.index), 0, cap, ok ? 1 : -1));
  }
  return out;
}

std::string run_charts_html(const std::vector<finetune::EpochRecord>& history, const std::vector<finetune::StepRecord>& steps) {
  Series it_loss{"train loss (per step)", {}, {}, "#1f77b4"}, lr{"head LR", {}, {}, "#9467bd"};
  for (const auto& s : steps) {
    it_loss.x.push_back(double(s.step + 1));
    it_loss.y.push_back(s.loss);
    lr.x.push_back(double(s.step + 1));
    lr.y.push_back(s.lr);
  }
  Series tl{"train loss", {}, {}, "#1f77b4"}, vl{"val loss", {}, {}, "#d62728"};
  Series ta{"train top-1", {}, {}, "#1f77b4"}, va{"val top-1", {}, {}, "#d62728"}, v5{"val top-5", {}, {}, "#ff7f0e", true};
  bool has_val = false;
  for (const auto& h : history) {
    const double e = double(h.epoch);
    tl.x.push_back(e), tl.y.push_back(h.train_loss);
    ta.x.push_back(e), ta.y.push_back(h.train_top1);
    if (h.has_val) {
      has_val = true;
      vl.x.push_back(e), vl.y.push_back(h.val_loss);
      va.x.push_back(e), va.y.push_back(h.val_top1);
      v5.x.push_back(e), v5.y.push_back(h.val_top5);
    }
  }
  std::vector<Series> losses{tl}, accs{ta};
  if (has_val) losses.push_back(vl), accs.push_back(va), accs.push_back(v5);
  double lo = INFINITY, hi = 0;
  for (double v : lr.y) lo = std::min(lo, v), hi = std::max(hi, v);
  const bool log_lr = lo > 0 && hi / lo > 20;
  std::string h = "<div class=\"charts\">\n";
  h += line_chart_svg({it_loss}, {.title = "Training loss per iteration", .xlabel = "step", .ylabel = "loss",
                                  .y_from_zero = true});
  h += line_chart_svg({lr}, {.title = "Learning rate (head group)", .xlabel = "step", .ylabel = "LR",
                             .y_from_zero = !log_lr, .log_y = log_lr});
  h += line_chart_svg(losses, {.title = "Loss per epoch", .xlabel = "epoch", .ylabel = "loss", .y_from_zero = true});
  h += line_chart_svg(accs, {.title = "Accuracy per epoch", .xlabel = "epoch", .ylabel = "accuracy", .y_min = 0,
                             .y_max = 1});
  return h + "</div>\n";
}

std::string epoch_table_html(const std::vector<finetune::EpochRecord>& history) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : history) {
    auto v = [&](double x, const char* f) { return r.has_val ? fmt::format(fmt::runtime(f), x) : std::string("-"); };
    rows.push_back({std::to_string(r.epoch) + (r.best ? " ★" : ""), r.phase ? "unfrozen" : "as configured",
                    fmt::format("{:.4f}", r.train_loss), fmt::format("{:.2f}%", 100 * r.train_top1), v(r.val_loss, "{:.4f}"),
                    v(100 * r.val_top1, "{:.2f}%"), v(100 * r.val_top5, "{:.2f}%"), fmt::format("{:.3g}", r.lr),
                    fmt::format("{:.1f}s", r.seconds), fmt::format("{:.0f}", r.images_per_s)});
  }
  return table_html({"epoch", "phase", "train loss", "train top-1", "val loss", "val top-1", "val top-5", "LR",
                     "time", "img/s"},
                    rows);
}

Report build_run_report(const RunReportInputs& in) {
  Report r;
  r.title = in.title;
  r.facts = in.facts;
  static const std::vector<finetune::EpochRecord> no_history;
  static const std::vector<finetune::StepRecord> no_steps;
  const auto& history = in.history ? *in.history : no_history;
  const auto& steps = in.steps ? *in.steps : no_steps;
  r.sections.push_back({"Curves", run_charts_html(history, steps)});
  r.sections.push_back({"Epochs", epoch_table_html(history)});
  if (in.eval && !in.class_names.empty()) {
    const auto& m = in.eval->metrics;
    std::string h = confusion_svg(m.confusion(), in.class_names, "Confusion matrix (last validation)");
    auto acc = m.per_class_accuracy();
    auto cnt = m.per_class_count();
    std::vector<std::vector<std::string>> rows;
    for (size_t c = 0; c < acc.size(); ++c)
      rows.push_back({in.class_names[c], std::to_string(cnt[c]), fmt::format("{:.2f}%", 100 * acc[c])});
    h += table_html({"class", "val images", "accuracy"}, rows);
    r.sections.push_back({"Validation: confusion matrix and per-class accuracy", h});
  }
  if (!in.train_tiles.empty())
    r.sections.push_back({"Augmented training images (epoch 1, as fed to the model)", image_grid_html(in.train_tiles)});
  if (!in.val_tiles.empty())
    r.sections.push_back({"Validation predictions (last epoch): true → predicted (probability)",
                          image_grid_html(in.val_tiles)});
  return r;
}

}  // namespace rtune::finetune
