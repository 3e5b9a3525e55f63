// `rtune demo`: generated data, pretraining, frozen-backbone fine-tuning vs from scratch, one report.
#include <memory>
#include "tools/commands.h"
#include "finetune/omp_wait.h"
#include "finetune/demo.h"

namespace rtune::tools {

void register_demo(CLI::App& app) {
  auto o = std::make_shared<finetune::DemoOptions>();
  auto quick = std::make_shared<bool>(false);
  CLI::App* sub = app.add_subcommand("demo", "Pretrain a small ResNet-18 on generated shapes, fine-tune it on a related "
                                             "task (frozen backbone vs all layers vs from scratch), write a report");
  sub->add_option("--out", o->out, "output folder (rtune-demo)");
  sub->add_option("--size", o->size, "image side in pixels (32)")->check(CLI::Range(16, 256));
  sub->add_option("--width", o->width, "ResNet base width (16; torchvision uses 64)")->check(CLI::Range(1, 128));
  sub->add_option("--epochs-pretrain", o->epochs_a, "pretraining epochs (10)")->check(CLI::PositiveNumber);
  sub->add_option("--epochs-finetune", o->epochs_b, "fine-tuning epochs per variant (10)")->check(CLI::PositiveNumber);
  sub->add_option("--seed", o->seed, "seed (0)");
  sub->add_option("--threads", o->threads, "data-loading threads (0 = all cores)")->check(CLI::Range(0, kMaxThreads));
  sub->add_option("--device", o->device, "auto | cpu | cuda | cuda:N (auto)");
  sub->add_flag("--quick", *quick, "a seconds-long smoke run (few images and epochs; results are not meaningful)");
  sub->callback([o, quick] {
    finetune::ensure_passive_omp_wait();
    if (*quick) {
      o->per_class_a = 12, o->per_class_b = 6, o->val_per_class = 4;
      o->epochs_a = 2, o->epochs_b = 2;
      o->width = std::min<int64_t>(o->width, 8);
    }
    finetune::run_demo(*o);
  });
}

}  // namespace rtune::tools
