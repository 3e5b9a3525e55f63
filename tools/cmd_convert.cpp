// `rtune convert IN OUT`: a torchvision ResNet .pth / .safetensors -> a self-describing rtune model file.
#include <cstdio>
#include <memory>
#include "finetune/model_file.h"
#include "tools/commands.h"
#include "finetune/convert.h"

namespace rtune::tools {

void register_convert(CLI::App& app) {
  auto o = std::make_shared<finetune::ConvertOptions>();
  auto dtype = std::make_shared<std::string>("float32");
  CLI::App* sub = app.add_subcommand("convert",
                                     "Turn a torchvision ResNet state_dict (.pth zip/legacy, checkpoint, DataParallel, "
                                     "fp16, or .safetensors) into an rtune model file (safetensors + metadata)");
  sub->add_option("input", o->input, "weights to read (.pth/.pt/.safetensors)")->required()->check(CLI::ExistingFile);
  sub->add_option("output", o->output, "model file to write (.safetensors)")->required();
  sub->add_option("--arch", o->arch, "resnet18|resnet34|resnet50|resnet101|resnet152 (default: inferred from the keys)")
      ->check(CLI::IsMember({"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"}));
  sub->add_option("--key", o->key, "the entry holding the state dict in a checkpoint, e.g. state_dict or model/ema "
                                   "(default: found automatically)");
  sub->add_option("--classes", o->classes, "class names: a text file (one per line) or JSON (a list, or {\"0\": name, …})")
      ->check(CLI::ExistingFile);
  sub->add_option("--input-size", o->input_size, "the image size the model expects (default 224)")
      ->check(CLI::Range(int64_t(1), finetune::kMaxInputSize));
  sub->add_option("--dtype", *dtype, "floating dtype on disk")
      ->check(CLI::IsMember({"float32", "float16", "bfloat16"}));
  sub->callback([o, dtype] {
    o->dtype = *dtype == "float16" ? DType::f16 : *dtype == "bfloat16" ? DType::bf16 : DType::f32;
    finetune::ConvertResult r = finetune::convert_model(*o);
    std::fputs(finetune::describe(r, *o).c_str(), stdout);
  });
}

}  // namespace rtune::tools
