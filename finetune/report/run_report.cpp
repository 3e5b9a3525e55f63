#include "finetune/report/run_report.h"
#include <algorithm>
#include <cmath>
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

namespace {
// Where the unfrozen phase begins, half-way between the last frozen and the first unfrozen epoch
// (step), on the per-epoch and the per-step axes; none when the history has no phase change.
struct UnfreezeMarks {
  std::vector<ChartMarker> epoch, step;
};
UnfreezeMarks unfreeze_marks(const std::vector<finetune::EpochRecord>& history, const std::vector<finetune::StepRecord>& steps) {
  UnfreezeMarks m;
  for (size_t i = 1; i < history.size(); ++i)
    if (history[i].phase != 0 && history[i - 1].phase == 0) {
      const int64_t e = history[i].epoch;
      const std::string label = fmt::format("unfreeze (epoch {})", e);
      m.epoch.push_back({double(e) - 0.5, label});
      for (const auto& s : steps)
        if (s.epoch == e) {
          m.step.push_back({double(s.step + 1) - 0.5, label});
          break;
        }
    }
  return m;
}

// One LR line per parameter group; the head LR alone for steps logged without group LRs.
std::vector<Series> lr_series(const std::vector<finetune::StepRecord>& steps, const std::vector<std::string>& groups) {
  const char* colors[] = {"#9467bd", "#2ca02c", "#ff7f0e", "#8c564b", "#17becf", "#e377c2"};
  std::vector<Series> out;
  for (size_t g = 0; g < groups.size(); ++g) out.push_back({groups[g] + " LR", {}, {}, colors[g % 6]});
  Series head{"head LR", {}, {}, "#9467bd"};
  for (const auto& s : steps) {
    const double x = double(s.step + 1);
    if (s.group_lrs.size() == groups.size() && !groups.empty()) {
      for (size_t g = 0; g < groups.size(); ++g) out[g].x.push_back(x), out[g].y.push_back(s.group_lrs[g]);
    } else {
      head.x.push_back(x), head.y.push_back(s.lr);
    }
  }
  if (!head.x.empty() || out.empty()) out.insert(out.begin(), head);
  return out;
}
}  // namespace

std::string run_charts_html(const std::vector<finetune::EpochRecord>& history, const std::vector<finetune::StepRecord>& steps,
                            const std::vector<std::string>& lr_groups) {
  Series it_loss{"train loss (per step)", {}, {}, "#1f77b4"};
  for (const auto& s : steps) {
    it_loss.x.push_back(double(s.step + 1));
    it_loss.y.push_back(s.loss);
  }
  const std::vector<Series> lrs = lr_series(steps, lr_groups);
  const UnfreezeMarks marks = unfreeze_marks(history, steps);
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
  for (const auto& s : lrs)
    for (double v : s.y)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  const bool log_lr = lo > 0 && hi / lo > 20;
  std::string h = "<div class=\"charts\">\n";
  h += line_chart_svg({it_loss}, {.title = "Training loss per iteration", .xlabel = "step", .ylabel = "loss",
                                  .y_from_zero = true, .markers = marks.step});
  h += line_chart_svg(lrs, {.title = "Learning rate per parameter group", .xlabel = "step", .ylabel = "LR",
                            .y_from_zero = !log_lr, .log_y = log_lr, .markers = marks.step});
  h += line_chart_svg(losses, {.title = "Loss per epoch", .xlabel = "epoch", .ylabel = "loss", .y_from_zero = true,
                               .markers = marks.epoch});
  h += line_chart_svg(accs, {.title = "Accuracy per epoch", .xlabel = "epoch", .ylabel = "accuracy", .y_min = 0,
                             .y_max = 1, .markers = marks.epoch});
  return h + "</div>\n";
}

std::string epoch_table_html(const std::vector<finetune::EpochRecord>& history) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : history) {
    auto v = [&](double x, const char* f) { return r.has_val ? fmt::format(fmt::runtime(f), x) : std::string("-"); };
    std::string lr = fmt::format("{:.3g}", r.lr);
    if (r.group_lrs.size() > 1) {  // "backbone 0.001, head 0.01"; a frozen group has no LR
      lr.clear();
      for (const auto& [name, glr] : r.group_lrs)
        lr += fmt::format("{}{} {}", lr.empty() ? "" : ", ", name, std::isnan(glr) ? "frozen" : fmt::format("{:.3g}", glr));
    }
    rows.push_back({std::to_string(r.epoch) + (r.best ? " ★" : ""), r.phase ? "unfrozen" : "as configured",
                    fmt::format("{:.4f}", r.train_loss), fmt::format("{:.2f}%", 100 * r.train_top1), v(r.val_loss, "{:.4f}"),
                    v(100 * r.val_top1, "{:.2f}%"), v(100 * r.val_top5, "{:.2f}%"), lr,
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
  r.sections.push_back({"Curves", run_charts_html(history, steps, in.lr_groups)});
  r.sections.push_back({"Epochs", epoch_table_html(history)});
  // The best checkpoint's matrix (best.safetensors); the last validation's only for a run resumed
  // from a checkpoint that did not keep the best one.
  const finetune::EvalResult* cm_eval = in.best_eval ? in.best_eval : in.eval;
  if (cm_eval && !in.class_names.empty()) {
    const auto& m = cm_eval->metrics;
    const std::string which = in.best_eval ? fmt::format("best checkpoint, epoch {}", in.best_epoch) : "last validation";
    std::string h = confusion_svg(m.confusion(), in.class_names, fmt::format("Confusion matrix ({})", which));
    auto acc = m.per_class_accuracy();
    auto cnt = m.per_class_count();
    std::vector<std::vector<std::string>> rows;
    for (size_t c = 0; c < acc.size(); ++c)
      rows.push_back({in.class_names[c], std::to_string(cnt[c]), fmt::format("{:.2f}%", 100 * acc[c])});
    h += table_html({"class", "val images", "accuracy"}, rows);
    r.sections.push_back({fmt::format("Validation ({}): confusion matrix and per-class accuracy", which), h});
  }
  if (!in.train_tiles.empty())
    r.sections.push_back({"Augmented training images (epoch 1, as fed to the model)", image_grid_html(in.train_tiles)});
  if (!in.val_tiles.empty())
    r.sections.push_back({"Validation predictions (last epoch; every class, mistakes first): true → predicted (probability)",
                          image_grid_html(in.val_tiles)});
  return r;
}

}  // namespace rtune::finetune
