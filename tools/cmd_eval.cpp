// `rtune eval --weights W --data DIR`: accuracy, top-5, per-class accuracy and the confusion matrix of
// a model file on an image folder (classes matched to the model's class names by name) or list file.
#include <cstdio>
#include <memory>
#include "engine/printable.h"
#include "finetune/batch.h"
#include "finetune/report/html.h"
#include "finetune/report/run_report.h"
#include "finetune/report/svg.h"
#include "tools/commands.h"
#include "finetune/omp_wait.h"
#include "finetune/infer.h"
#include "finetune/size_advice.h"
#include "finetune/train_run.h"

namespace rtune::tools {

namespace {
struct Opts {
  std::string weights, data, list, list_root, transforms, device = "auto", report;
  int64_t batch = 32;
  int threads = 0;
  bool json = false;
  bool strict = false;
};

void run_eval(const Opts& o) {
  const Device dev = finetune::resolve_device(o.device, nullptr);
  finetune::InferenceModel m = finetune::load_inference_model(o.weights, o.transforms, dev);
  const int64_t c = m.loaded.info.num_classes;
  io::Dataset ds;
  io::ScanOptions scan;
  scan.strict = o.strict;
  if (!o.data.empty()) {
    ds = io::image_folder(o.data, scan);
    // Map folder names to the model's classes by name when the model has names: the folders it was
    // trained on when it records them (its class names may then be display names), else its class names.
    const auto& info = m.loaded.info;
    if (!info.class_folders.empty() || !info.class_names.empty()) {
      const std::vector<std::string>& known = info.class_folders.empty() ? m.names : info.class_folders;
      std::vector<int64_t> remap;
      for (const auto& name : ds.classes) {
        auto it = std::find(known.begin(), known.end(), name);
        if (it == known.end())
          fail("--data {}: class folder '{}' is not one of the model's {} ({})", o.data, printable(name),
               info.class_folders.empty() ? "classes" : "class folders", printable_list(known));
        remap.push_back(it - known.begin());
      }
      for (auto& s : ds.samples) s.label = remap[size_t(s.label)];
    } else if (ds.num_classes() > c) {
      fail("--data {}: {} class folders but the model has {} outputs", o.data, ds.num_classes(), c);
    }
  } else {
    ds = io::list_file_dataset(o.list, o.list_root.empty() ? std::filesystem::path(o.list).parent_path()
                                                           : std::filesystem::path(o.list_root), scan);
    if (ds.num_classes() > c) fail("--list {}: labels up to {} but the model has {} outputs", o.list, ds.num_classes() - 1, c);
  }
  if (ds.samples.empty()) fail("no images to finetune::evaluate");
  io::LoaderOptions lo;
  lo.batch_size = int(o.batch);
  lo.threads = o.threads;
  lo.host_memory = finetune::pinned_host_memory(dev);
  lo.shuffle = false;
  lo.strict = o.strict;
  lo.skip_bad = true;  // an image that does not decode is left out, never counted as a substitute
  io::Loader loader(ds, m.pipeline, lo);
  finetune::EvalResult r = finetune::evaluate(*m.loaded.model, loader, m.norm, c, DType::f32, dev, nn::Precision::fp32, 0, 32);
  const auto& mt = r.metrics;
  const size_t skipped = loader.skipped_samples().size() + ds.skipped;  // at decode time, and by the scan
  if (mt.count() == 0) fail("none of the {} image(s) could be decoded (each is named above with the reason)", ds.samples.size());
  if (skipped > 0)
    std::fprintf(stderr, "warning: eval: skipped %zu image(s) that do not decode (named above); scored %lld\n", skipped,
                 (long long)mt.count());
  auto acc = mt.per_class_accuracy();
  auto cnt = mt.per_class_count();
  if (o.json) {
    nlohmann::json j{{"model", o.weights}, {"images", mt.count()}, {"top1", mt.top1()}, {"top5", mt.top5()},
                     {"loss", mt.loss()}, {"skipped", skipped}, {"classes", m.names},
                     {"confusion", nlohmann::json::array()}};
    for (int64_t t = 0; t < c; ++t) {
      j["per_class"].push_back({{"name", m.names[size_t(t)]}, {"images", cnt[size_t(t)]}, {"accuracy", acc[size_t(t)]}});
      j["confusion"].push_back(std::vector<int64_t>(mt.confusion().begin() + t * c, mt.confusion().begin() + (t + 1) * c));
    }
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("%s on %lld images%s: top-1 %.2f%%  top-5 %.2f%%  loss %.4f\n", o.weights.c_str(), (long long)mt.count(),
                skipped ? fmt::format(" ({} skipped: they do not decode)", skipped).c_str() : "", 100 * mt.top1(),
                100 * mt.top5(), mt.loss());
    std::printf("per class:\n");
    for (int64_t t = 0; t < c; ++t)
      if (cnt[size_t(t)]) std::printf("  %-24s %6lld images  %6.2f%%\n", printable(m.names[size_t(t)]).c_str(), (long long)cnt[size_t(t)], 100 * acc[size_t(t)]);
    if (c <= 20) {
      std::printf("confusion matrix (rows: true, columns: predicted):\n%24s", "");
      for (int64_t p = 0; p < c; ++p) std::printf(" %6lld", (long long)p);
      std::printf("\n");
      for (int64_t t = 0; t < c; ++t) {
        std::printf("  %2lld %-19.19s", (long long)t, printable(m.names[size_t(t)]).c_str());
        for (int64_t p = 0; p < c; ++p) std::printf(" %6lld", (long long)mt.confusion()[size_t(t * c + p)]);
        std::printf("\n");
      }
    }
  }
  if (!o.report.empty()) {
    finetune::Report rep;
    rep.title = "rtune eval: " + o.weights;
    rep.facts = {{"model", o.weights}, {"data", o.data.empty() ? o.list : o.data},
                 {"accuracy", fmt::format("top-1 {:.2f}%, top-5 {:.2f}% on {} images", 100 * mt.top1(), 100 * mt.top5(), mt.count())}};
    rep.sections.push_back({"Confusion matrix", finetune::confusion_svg(mt.confusion(), m.names, "Confusion matrix")});
    rep.sections.push_back({"Predictions", finetune::image_grid_html(finetune::prediction_tiles(loader, r, m.names))});
    finetune::write_report(o.report, rep);
    std::printf("report: %s\n", o.report.c_str());
  }
}
}  // namespace

void register_eval(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("eval", "Accuracy, per-class accuracy and confusion matrix of a model file on a dataset");
  sub->add_option("--weights", o->weights, "model file")->required()->check(CLI::ExistingFile);
  auto* d = sub->add_option("--data", o->data, "image folder, one sub-folder per class")->check(CLI::ExistingDirectory);
  auto* l = sub->add_option("--list", o->list, "list file of 'relative/path label' lines")->check(CLI::ExistingFile);
  d->excludes(l);
  sub->add_option("--list-root", o->list_root, "folder the list's paths are relative to");
  sub->add_option("--transforms", o->transforms, "transforms instead of the model file's (its training run's --val-transforms, else resize + center crop for its input size; syntax: rtune train --help)");
  sub->add_option("--batch", o->batch, "batch size (32)")->check(CLI::PositiveNumber);
  sub->add_option("--threads", o->threads, "decoding threads (0 = all cores)")->check(CLI::Range(0, kMaxThreads));
  sub->add_option("--device", o->device, "auto | cpu | cuda | cuda:N (auto)");
  sub->add_option("--report", o->report, "also write an HTML report here");
  sub->add_flag("--json", o->json, "print JSON instead of text");
  sub->add_flag("--strict", o->strict, "stop at the first image that does not decode (default: skip it with a warning)");
  sub->callback([o] {
    finetune::ensure_passive_omp_wait();
    if (o->data.empty() && o->list.empty()) throw CLI::RequiredError("--data or --list");
    finetune::with_size_advice(fmt::format("--batch {}", o->batch), "lower --batch", [&] { run_eval(*o); });
  });
}

}  // namespace rtune::tools
