// `rtune summary`: per-layer table (module path, type, output shape, params, MACs) and totals of a ResNet,
// built from --arch or read from --weights; computed from shapes, no forward pass.
#include <charconv>
#include <cstdio>
#include <memory>
#include "finetune/model_file.h"
#include "tools/commands.h"
#include "finetune/size_advice.h"
#include "finetune/summary.h"

namespace rtune::tools {

namespace {
struct SummaryArgs {
  std::string arch, weights, input;  // input: "224" or "HxW"
  int64_t num_classes = 0, width = 0;
  bool totals_only = false;
};

// "224" -> 224x224; "224x160" -> 224 high, 160 wide.
std::pair<int64_t, int64_t> parse_input(const std::string& s) {
  auto num = [&](std::string_view v) {
    int64_t x = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    if (ec != std::errc() || end != v.data() + v.size() || x <= 0)
      throw CLI::ValidationError("--input", "expected a size like 224 or 224x160, got '" + s + "'");
    return x;
  };
  size_t x = s.find_first_of("xX");
  if (x == std::string::npos) return {num(s), num(s)};
  return {num(std::string_view(s).substr(0, x)), num(std::string_view(s).substr(x + 1))};
}
}  // namespace

void register_summary(CLI::App& app) {
  auto a = std::make_shared<SummaryArgs>();
  CLI::App* sub = app.add_subcommand("summary", "Per-layer table of a ResNet: output shapes, parameters, MACs, memory");
  sub->add_option("--arch", a->arch, "resnet18|resnet34|resnet50|resnet101|resnet152")
      ->check(CLI::IsMember({"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"}));
  CLI::Option* weights = sub->add_option("--weights", a->weights, "take the model from this file (rtune model file, "
                                                                  "or torchvision .pth/.safetensors)")
                             ->check(CLI::ExistingFile);
  sub->add_option("--num-classes", a->num_classes, "classifier outputs (default 1000, or the file's)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--width", a->width, "base width (default 64)")->check(CLI::PositiveNumber)->excludes(weights);
  sub->add_option("--input", a->input, "input image size, 224 or HxW (default 224, or the model file's)");
  sub->add_flag("--totals-only", a->totals_only, "print only the totals");
  sub->callback([a] {
    if (a->arch.empty() && a->weights.empty())
      throw CLI::RequiredError("summary needs --arch (e.g. --arch resnet50) or --weights FILE");
    std::unique_ptr<models::ResNet> model;
    int64_t default_input = 224;
    if (!a->weights.empty()) {
      finetune::LoadedModel lm = finetune::load_model(
          a->weights, {.arch = a->arch, .num_classes = a->num_classes, .replace_head = a->num_classes > 0});
      model = std::move(lm.model);
      default_input = lm.info.input_size;
      for (const std::string& n : lm.report.notes) std::printf("note: %s\n", n.c_str());
    } else {
      const int64_t width = a->width > 0 ? a->width : 64, classes = a->num_classes > 0 ? a->num_classes : 1000;
      model = finetune::with_size_advice(fmt::format("--width {} --num-classes {}", width, classes),
                               "lower --width (torchvision's models have 64) or --num-classes", [&] {
                                 return std::make_unique<models::ResNet>(models::ResNetConfig{a->arch, width, classes});
                               });
    }
    auto [h, w] = a->input.empty() ? std::pair{default_input, default_input} : parse_input(a->input);
    std::fputs(finetune::format_summary(finetune::summarize(*model, h, w), !a->totals_only).c_str(), stdout);
  });
}

}  // namespace rtune::tools
