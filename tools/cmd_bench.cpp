// `rtune bench conv|loader|train|infer`: print measured figures (see bench/RESULTS.md for recorded runs).
#include <cstdio>
#include "engine/error.h"
#include "finetune/loader_bench.h"
#include "tools/commands.h"
#include "finetune/bench_ops.h"
#include "finetune/size_advice.h"
#include "finetune/train_run.h"
#include "kernels/dist/comm.h"

namespace rtune::tools {

void register_bench(CLI::App& app) {
  CLI::App* bench = app.add_subcommand("bench", "measure speed: conv kernels, the data loader, training steps, inference");
  bench->require_subcommand(1);
  auto print = [](const std::string& s) { std::printf("%s\n", s.c_str()); std::fflush(stdout); };

  auto* conv = bench->add_subcommand("conv", "conv2d forward/backward at ResNet-18 layer shapes (GFLOP/s)");
  auto conv_batch = std::make_shared<int64_t>(8);
  auto conv_reps = std::make_shared<int>(3);
  auto conv_device = std::make_shared<std::string>("cpu");
  conv->add_option("--batch", *conv_batch, "batch size")->check(CLI::PositiveNumber);
  conv->add_option("--reps", *conv_reps, "timed repetitions (best is reported)")->check(CLI::PositiveNumber);
  conv->add_option("--device", *conv_device, "cpu or cuda[:N]");
  auto conv_backend = std::make_shared<std::string>();
  add_cpu_backend_option(conv, *conv_backend);
  auto conv_precision = std::make_shared<std::string>("fp32");
  conv->add_option("--precision", *conv_precision, "fp32, or bf16 products (CPU: oneDNN's bf16 kernels, fp32 tensors)")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  conv->callback([=] {
    apply_cpu_backend(*conv_backend);
    const bool bf16 = *conv_precision == "bf16";
    finetune::with_size_advice(fmt::format("--batch {}", *conv_batch), "lower --batch",
                     [&] { finetune::bench_conv(*conv_batch, *conv_reps, Device::parse(*conv_device), bf16, print); });
  });

  auto* loader = bench->add_subcommand("loader", "data pipeline img/s: decode only, train transforms, cached");
  auto lo = std::make_shared<finetune::LoaderBenchOptions>();
  auto cache_mib = std::make_shared<size_t>(0);
  loader->add_option("--data", lo->data, "an image folder (one sub-folder per class)")->required();
  loader->add_option("--threads", lo->threads, "worker threads (0: all cores)")->check(CLI::Range(0, kMaxThreads));
  loader->add_option("--batch", lo->batch_size, "batch size")->check(CLI::PositiveNumber);
  loader->add_option("--transforms", lo->transforms, "pipeline spec, e.g. imagenet-train");
  loader->add_flag("--cache", lo->cache, "also measure epoch 2 from the decoded-image cache");
  loader->add_option("--cache-mib", *cache_mib, "cache budget in MiB (0: half the memory)");
  loader->add_option("--images", lo->max_images, "use only the first N images");
  loader->add_option("--read-ahead", lo->read_ahead, "files named to the OS per worker ahead of the workers (0: off)")
      ->check(CLI::NonNegativeNumber);
  loader->add_flag("!--skip-decode", lo->decode_pass, "leave out the decode-only pass (which also warms the page cache)");
  loader->callback([=] {
    finetune::LoaderBenchOptions opt = *lo;
    opt.cache_bytes = *cache_mib << 20;
    finetune::LoaderBenchResult r = finetune::run_loader_bench(opt, print);
    print(finetune::to_json(r));
  });

  // train and infer: the same flags (--freeze for train only) and one way to run either.
  auto add_model_bench = [&](bool train, const char* help) {
    CLI::App* sub = bench->add_subcommand(train ? "train" : "infer", help);
    auto mo = std::make_shared<finetune::ModelBenchOptions>();
    auto device = std::make_shared<std::string>("cpu");
    auto backend = std::make_shared<std::string>();
    sub->add_option("--arch", mo->arch, "resnet18|34|50|101|152");
    sub->add_option("--batch", mo->batch, "batch size")->check(CLI::PositiveNumber);
    sub->add_option("--input", mo->input, "image size in pixels")->check(CLI::PositiveNumber);
    sub->add_option("--width", mo->width, "base width (64 for torchvision models)")->check(CLI::PositiveNumber);
    sub->add_option("--steps", mo->steps, "timed steps")->check(CLI::PositiveNumber);
    sub->add_option("--warmup", mo->warmup, "untimed warm-up steps")->check(CLI::NonNegativeNumber);
    sub->add_option("--precision", mo->precision, "fp32 or bf16")->check(CLI::IsMember({"fp32", "bf16"}));
    sub->add_option("--device", *device, "cpu or cuda[:N]");
    add_compute_threads_option(sub, mo->threads);
    add_cpu_backend_option(sub, *backend);
    auto freeze = std::make_shared<std::string>("none");
    auto frozen_bn = std::make_shared<std::string>("eval");
    if (train) {
      sub->add_option("--freeze", *freeze, "none or backbone")->check(CLI::IsMember({"none", "backbone"}));
      sub->add_option("--frozen-bn", *frozen_bn,
                      "eval (default, as rtune train: folded, no-grad backbone) or train (batch statistics, as "
                      "a PyTorch script's model.train()), with --freeze backbone")
          ->check(CLI::IsMember({"eval", "train"}));
    }
    sub->callback([=] {
      apply_cpu_backend(*backend);
      finetune::ModelBenchOptions o = *mo;
      // Under mpirun a train benchmark is data-parallel: each rank on its own GPU (cuda:LOCAL_RANK).
      o.device = train ? finetune::resolve_device(finetune::rank_device_spec(*device, dist::world()), nullptr)
                       : Device::parse(*device);
      o.freeze_backbone = *freeze == "backbone";
      o.frozen_bn_eval = *frozen_bn == "eval";
      finetune::with_size_advice(fmt::format("--batch {} at --input {} (--width {})", o.batch, o.input, o.width),
                                 "lower --batch, --input or --width",
                                 [&] { train ? finetune::bench_train(o, print) : finetune::bench_infer(o, print); });
    });
  };
  add_model_bench(true, "synthetic-data training steps (img/s)");
  add_model_bench(false, "synthetic-data inference: eval mode, no grad, forward only (img/s)");
}

}  // namespace rtune::tools
