#include "finetune/demo.h"
#include <chrono>
#include <cstdio>
#include <fmt/format.h>
#include "finetune/synthetic.h"
#include "finetune/report/html.h"
#include "finetune/report/run_report.h"
#include "finetune/report/svg.h"
#include "finetune/run_folder.h"
#include "finetune/train_run.h"

namespace rtune::finetune {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {
void line(const std::string& s) { std::printf("%s\n", s.c_str()), std::fflush(stdout); }

TrainArgs base_args(const DemoOptions& o, const fs::path& data, const fs::path& out, int64_t epochs) {
  TrainArgs a;
  a.data = data.string();
  a.arch = "resnet18";
  a.width = o.width;
  a.train.epochs = epochs;
  a.batch = 32;
  a.image_size = o.size;
  // Small synthetic images: pad-and-crop + flip (the CIFAR recipe), mid-grey normalisation.
  const std::string norm = "normalize=0.5:0.5:0.5/0.25:0.25:0.25";
  a.transforms = fmt::format("random_crop={}:pad={},hflip,{}", o.size, o.size / 16, norm);
  a.val_transforms = fmt::format("center_crop={},{}", o.size, norm);
  a.train.opt.kind = "adam";
  a.train.opt.lr = 3e-3;
  a.train.sched = "cosine";
  a.seed = o.seed;
  a.threads = o.threads;
  a.device = o.device;
  a.out = out.string();
  a.progress = true;
  return a;
}

struct Variant {
  std::string name, color;
  TrainOutcome result;
};
}  // namespace

fs::path run_demo(const DemoOptions& o) {
  const auto t0 = Clock::now();
  if (fs::exists(o.out / run_file::report) || fs::exists(o.out / "pretrain"))
    fail("demo: {} already holds a demo; remove it or pass --out elsewhere", o.out.string());
  fs::create_directories(o.out);
  line(fmt::format("rtune demo: ResNet-18 at base width {} (torchvision: 64; reduced so the demo fits 2 CPU cores) "
                   "on generated {}x{} images", o.width, o.size, o.size));

  // 1. Data: two related tasks.
  using finetune::synth::Task;
  const fs::path da = o.out / "data" / "shapes", db = o.out / "data" / "families";
  finetune::synth::write_image_folder(da / "train", Task::shapes, o.per_class_a, o.size, o.seed * 4 + 1);
  finetune::synth::write_image_folder(da / "val", Task::shapes, o.val_per_class, o.size, o.seed * 4 + 2);
  finetune::synth::write_image_folder(db / "train", Task::families, o.per_class_b, o.size, o.seed * 4 + 3);
  finetune::synth::write_image_folder(db / "val", Task::families, o.val_per_class, o.size, o.seed * 4 + 4);
  line(fmt::format("data: task A '{}' ({} classes, {} train images) and task B '{}' ({} classes, {} train images) in {}",
                   "shapes", 4, 4 * o.per_class_a, "families", 3, 3 * o.per_class_b, (o.out / "data").string()));

  // 2. Pretrain on A from scratch.
  line("\n== 1/4 pretraining on task A (shapes) from scratch ==");
  TrainArgs pa = base_args(o, da, o.out / "pretrain", o.epochs_a);
  TrainOutcome pre = run_training(pa);

  // 3. Task B three ways.
  std::vector<Variant> vs;
  {
    line("\n== 2/4 task B: pretrained backbone frozen, new head only ==");
    TrainArgs a = base_args(o, db, o.out / "finetune_frozen", o.epochs_b);
    a.weights = pre.best.string();
    a.train.freeze = finetune::parse_freeze("backbone");
    a.train.opt.lr = 1e-2;
    vs.push_back({"pretrained, frozen backbone", "#2ca02c", run_training(a)});
  }
  {
    line("\n== 3/4 task B: pretrained, every layer fine-tuned ==");
    TrainArgs a = base_args(o, db, o.out / "finetune_all", o.epochs_b);
    a.weights = pre.best.string();
    a.train.opt.lr = 1e-3;
    vs.push_back({"pretrained, all layers", "#1f77b4", run_training(a)});
  }
  {
    line("\n== 4/4 task B: from scratch ==");
    TrainArgs a = base_args(o, db, o.out / "scratch", o.epochs_b);
    vs.push_back({"from scratch", "#d62728", run_training(a)});
  }

  // 4. The comparison report.
  finetune::Report rep;
  rep.title = "rtune demo: fine-tuning a pretrained ResNet-18 vs training from scratch";
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  rep.facts = {{"model", fmt::format("ResNet-18, base width {} (torchvision 64)", o.width)},
               {"task A (pretraining)", fmt::format("4 shapes, {} train / {} val images, {}x{}", 4 * o.per_class_a,
                                                    4 * o.val_per_class, o.size, o.size)},
               {"task B (target)", fmt::format("3 shape families (round, three corners, four corners; ellipses and "
                                               "rectangles never seen in A), {} train / {} val images",
                                               3 * o.per_class_b, 3 * o.val_per_class)},
               {"pretraining result", fmt::format("val top-1 {:.1f}% on task A", 100 * pre.best_top1)},
               {"total time", fmt::format("{:.1f}s", secs)}};
  std::vector<finetune::Series> acc, loss;
  std::vector<std::vector<std::string>> rows;
  for (auto& v : vs) {
    finetune::Series a{v.name, {}, {}, v.color}, l{v.name, {}, {}, v.color};
    for (auto& h : v.result.history) {
      a.x.push_back(double(h.epoch)), a.y.push_back(h.val_top1);
      l.x.push_back(double(h.epoch)), l.y.push_back(h.val_loss);
    }
    acc.push_back(a), loss.push_back(l);
    rows.push_back({v.name, fmt::format("{:.1f}%", 100 * v.result.best_top1), std::to_string(v.result.best_epoch),
                    fmt::format("{:.1f}%", 100 * v.result.history.back().val_top1), fmt::format("{:.1f}s", v.result.seconds),
                    fs::relative(v.result.report, o.out).string()});
  }
  std::string charts = "<div class=\"charts\">\n";
  charts += finetune::line_chart_svg(acc, {.title = "Task B: validation top-1 per epoch", .xlabel = "epoch",
                                     .ylabel = "accuracy", .y_min = 0, .y_max = 1});
  charts += finetune::line_chart_svg(loss, {.title = "Task B: validation loss per epoch", .xlabel = "epoch", .ylabel = "loss",
                                      .y_from_zero = true});
  charts += "</div>\n";
  rep.sections.push_back({"Task B: three ways compared", charts + finetune::table_html({"variant", "best val top-1",
                          "best epoch", "last val top-1", "time", "full run report"}, rows)});
  std::string links = "<ul>";
  for (auto& [n, p] : std::vector<std::pair<std::string, fs::path>>{{"pretraining on task A", pre.report},
                                                                    {vs[0].name, vs[0].result.report},
                                                                    {vs[1].name, vs[1].result.report},
                                                                    {vs[2].name, vs[2].result.report}})
    links += fmt::format("<li><a href=\"{}\">{}</a></li>", finetune::html_escape(fs::relative(p, o.out).string()), finetune::html_escape(n));
  rep.sections.push_back({"Run reports (curves, confusion matrices, image grids)", links + "</ul>\n"});
  std::vector<finetune::ImageTile> ta, tb;
  for (int c = 0; c < 4; ++c)
    for (int i = 0; i < 3; ++i) ta.push_back({finetune::synth::render(Task::shapes, c, o.size, 99, uint64_t(i)),
                                              finetune::synth::class_names(Task::shapes)[size_t(c)], 0});
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 4; ++i) tb.push_back({finetune::synth::render(Task::families, c, o.size, 99, uint64_t(i)),
                                              finetune::synth::class_names(Task::families)[size_t(c)], 0});
  rep.sections.push_back({"Task A samples", finetune::image_grid_html(ta, 64)});
  rep.sections.push_back({"Task B samples", finetune::image_grid_html(tb, 64)});
  const fs::path report = o.out / run_file::report;
  finetune::write_report(report, rep);

  line("\n== summary (task B, validation top-1) ==");
  for (auto& v : vs)
    line(fmt::format("  {:<30} best {:5.1f}% (epoch {}), {:.1f}s", v.name, 100 * v.result.best_top1, v.result.best_epoch,
                     v.result.seconds));
  line(fmt::format("demo finished in {:.1f}s. Report: {}", std::chrono::duration<double>(Clock::now() - t0).count(),
                   fs::absolute(report).string()));
  return report;
}

}  // namespace rtune::finetune
