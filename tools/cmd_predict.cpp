// `rtune predict --weights W IMAGE|DIR… [--topk 5] [--json]`: class names and softmax scores from a
// model file (names, input size and normalisation come from its metadata).
#include <cstdio>
#include <memory>
#include "engine/printable.h"
#include "tools/commands.h"
#include "finetune/omp_wait.h"
#include "finetune/infer.h"
#include "finetune/size_advice.h"
#include "finetune/train_run.h"

namespace rtune::tools {

void register_predict(CLI::App& app) {
  struct Opts {
    std::string weights, transforms, device = "auto";
    std::vector<std::string> inputs;
    int64_t topk = 5, batch = 16;
    int threads = 0;
    bool json = false;
    bool strict = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("predict", "Classify images with a model file: class names and softmax scores");
  sub->add_option("--weights", o->weights, "model file (rtune train's best.safetensors, or rtune convert's output)")
      ->required()->check(CLI::ExistingFile);
  sub->add_option("inputs", o->inputs, "images and/or folders (searched recursively)")->required();
  sub->add_option("--topk", o->topk, "how many classes to list per image (5)")->check(CLI::PositiveNumber);
  sub->add_flag("--json", o->json, "print JSON: {model, arch, num_classes, transforms, predictions: [{path, top: "
                                   "[{class, name, score}]}]}");
  sub->add_option("--transforms", o->transforms, "transforms instead of the model file's (its training run's --val-transforms, else resize + center crop for its input size; syntax: rtune train --help)");
  sub->add_option("--batch", o->batch, "batch size (16)")->check(CLI::PositiveNumber);
  sub->add_option("--threads", o->threads, "decoding threads (0 = all cores)")->check(CLI::Range(0, kMaxThreads));
  sub->add_option("--device", o->device, "auto | cpu | cuda | cuda:N (auto)");
  sub->add_flag("--strict", o->strict, "stop at the first image that does not decode (default: skip it with a warning "
                                       "naming it, and count the skipped ones)");
  sub->callback([o] {
    finetune::ensure_passive_omp_wait();
    const Device dev = finetune::resolve_device(o->device, nullptr);
    finetune::InferenceModel m = finetune::load_inference_model(o->weights, o->transforms, dev);
    auto files = finetune::collect_images(o->inputs);
    finetune::PredictResult r = finetune::with_size_advice(fmt::format("--batch {}", o->batch), "lower --batch", [&] {
      return finetune::predict_files(m, files, std::min<int64_t>(o->topk, m.loaded.info.num_classes), o->batch, o->threads, dev,
                           o->strict);
    });
    if (!r.skipped.empty())
      std::fprintf(stderr, "warning: predict: skipped %zu of %zu image(s) that do not decode (named above)\n",
                   r.skipped.size(), files.size());
    if (o->json) {
      std::printf("%s\n", finetune::predictions_json(m, o->weights, r).dump(2).c_str());
      return;
    }
    for (const auto& p : r.predictions) {
      std::string line = p.path + ":";
      for (size_t k = 0; k < p.topk.size(); ++k)
        line += fmt::format("{} {} {:.4f}", k ? "," : "", printable(m.names[size_t(p.topk[k].first)]), p.topk[k].second);
      std::printf("%s\n", line.c_str());
    }
  });
}

}  // namespace rtune::tools
