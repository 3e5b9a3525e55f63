// `rtune predict --weights W IMAGE|DIR… [--topk 5] [--json]`: class names and softmax scores from a
// model file (names, input size and normalisation come from its metadata).
#include <cstdio>
#include <memory>
#include "engine/printable.h"
#include "tools/commands.h"
#include "tools/lib/train_omp.h"
#include "tools/lib/train_infer.h"
#include "tools/lib/train_run.h"

namespace rtune::tools {

void register_predict(CLI::App& app) {
  struct Opts {
    std::string weights, transforms, device = "auto";
    std::vector<std::string> inputs;
    int64_t topk = 5, batch = 16;
    int threads = 0;
    bool json = false;
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
  sub->add_option("--threads", o->threads, "decoding threads (0 = all cores)");
  sub->add_option("--device", o->device, "auto | cpu | cuda | cuda:N (auto)");
  sub->callback([o] {
    ensure_passive_omp_wait();
    const Device dev = resolve_device(o->device, nullptr);
    InferenceModel m = load_inference_model(o->weights, o->transforms, dev);
    auto files = collect_images(o->inputs);
    auto preds = predict_files(m, files, std::min<int64_t>(o->topk, m.loaded.info.num_classes), o->batch, o->threads, dev);
    if (o->json) {
      std::printf("%s\n", predictions_json(m, o->weights, preds).dump(2).c_str());
      return;
    }
    for (const auto& p : preds) {
      std::string line = p.path + ":";
      for (size_t k = 0; k < p.topk.size(); ++k)
        line += fmt::format("{} {} {:.4f}", k ? "," : "", printable(m.names[size_t(p.topk[k].first)]), p.topk[k].second);
      std::printf("%s\n", line.c_str());
    }
  });
}

}  // namespace rtune::tools
