// `rtune train`: fine-tune (or train from scratch) a ResNet on an image folder or list file; see
// finetune/train_run.h for what lands in the run folder.
#include <memory>

#include <fmt/format.h>

#include "tools/commands.h"
#include "finetune/omp_wait.h"
#include "io/data/cache.h"
#include "io/transforms/pipeline.h"
#include "finetune/size_advice.h"
#include "finetune/train_run.h"

namespace rtune::tools {

namespace {

// Two caches of --cache-mib each (training and validation set) must fit in 3/4 of the RAM: a budget
// the machine cannot hold would end in the kernel's OOM killer mid-run instead of this message.
CLI::Validator cache_fits_in_memory() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        const size_t ram = io::physical_memory_bytes();
        const uint64_t mib = std::stoull(value), limit_mib = (ram / 4 * 3) >> 20;
        if (ram == 0 || 2 * mib <= limit_mib) return {};
        return fmt::format("{} MiB for the training set's cache and as much for the validation set's is more than "
                           "3/4 of this machine's {} MiB of RAM: lower --cache-mib to at most {}",
                           mib, ram >> 20, limit_mib / 2);
      },
      "fits in RAM");
}

}  // namespace

void register_train(CLI::App& app) {
  auto a = std::make_shared<finetune::TrainArgs>();
  auto s = std::make_shared<std::map<std::string, std::string>>();
  auto resume = std::make_shared<std::string>();
  auto betas = std::make_shared<std::vector<double>>();
  auto no_progress = std::make_shared<bool>(false);
  auto budget = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand("train", "Fine-tune a ResNet on a folder of images (or train one from scratch)");
  sub->footer(
      "Examples:\n"
      "  rtune train --data flowers/ --weights resnet18.pth --freeze backbone --epochs 5 --out runs/r18\n"
      "  rtune train --data imgs/ --val-split 0.2 --arch resnet50 --weights r50.safetensors --opt sgd --lr 0.01 \\\n"
      "      --wd 1e-4 --sched onecycle:max_lr=0.01 --clip-value 1 --epochs 10 --out runs/r50\n"
      "  rtune train --resume runs/r50 [--epochs 20]\n"
      "Run folder: best.safetensors (model file, best val top-1), last.ckpt (resumable state), metrics.jsonl,\n"
      "metrics.csv, report.html.\n\n"
      "--transforms / --val-transforms: each must end in a fixed size (a crop, or resize=HxW), or in resize=S\n"
      "(square images only: the first other one stops the run, named); default:\n"
      "random_resized_crop=S,hflip,normalize=imagenet / resize=S*256/224,center_crop=S,normalize=imagenet\n"
      "(S = --image-size). A val pipeline without normalize uses the training's.\n" +
      std::string(io::pipeline_usage()));
  auto g_data = "Data";
  sub->add_option("--data", a->data, "image folder (one sub-folder per class; DIR/train + DIR/val (or DIR/valid, DIR/validation) are used when present)")
      ->group(g_data);
  sub->add_option("--train-list", a->train_list, "list file of 'relative/path label' lines")->group(g_data);
  sub->add_option("--val", a->val, "validation image folder")->group(g_data);
  sub->add_option("--val-list", a->val_list, "validation list file")->group(g_data);
  sub->add_option("--list-root", a->list_root, "folder the list files' paths are relative to (default: the list's folder)")
      ->group(g_data);
  sub->add_option("--val-split", a->val_split, "hold out this fraction of the training images (stratified, seeded)")
      ->group(g_data);
  sub->add_option("--classes", a->classes,
                  "class names: JSON keyed by class folder name (e.g. the flowers tutorial's cat_to_name.json) or by "
                  "class index, a JSON list, or text with one name per line (index / line order = the folders sorted "
                  "by name, or the list file's labels)")
      ->group(g_data);
  sub->add_option("--transforms", a->transforms,
                  "training transforms, e.g. random_resized_crop=224,hflip,normalize=imagenet (syntax below)")
      ->group(g_data);
  sub->add_option("--val-transforms", a->val_transforms, "validation transforms, e.g. resize=256,center_crop=224,normalize=imagenet")
      ->group(g_data);
  sub->add_flag("--strict", a->strict,
                "stop at the first image that does not decode (default: skip it with a warning naming it and why, "
                "and count the skipped ones)")
      ->group(g_data);
  sub->add_option("--image-size", a->image_size, "crop size of the default transforms (224)")->group(g_data);
  sub->add_option("--batch", a->batch, "batch size (32)")->group(g_data);
  sub->add_option("--threads", a->threads, "data-loading threads (0 = all cores)")->check(CLI::Range(0, kMaxThreads))->group(g_data);
  sub->add_option("--cache-mib", a->cache_mib,
                  "keep decoded images in RAM from epoch 2 on, up to this many MiB for the training set and as "
                  "many for the validation set (0 = off; batches are identical either way)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 24))
      ->check(cache_fits_in_memory())
      ->group(g_data);

  auto g_model = "Model";
  sub->add_option("--arch", a->arch, "resnet18|resnet34|resnet50|resnet101|resnet152 (default: read from --weights; resnet18 from scratch)")
      ->check(CLI::IsMember({"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"}))->group(g_model);
  sub->add_option("--weights", a->weights, "pretrained weights: .pth, .safetensors or rtune model file")->group(g_model);
  sub->add_option("--pretrained", (*s)["pretrained"], "'none' to train from scratch")->check(CLI::IsMember({"none"}))
      ->group(g_model);
  sub->add_option("--width", a->width, "base width of a from-scratch model (64 = torchvision)")->group(g_model);
  sub->add_flag("--reset-head", a->reset_head, "re-initialise fc even if the class count matches")->group(g_model);
  sub->add_option("--freeze", (*s)["freeze"], "none | backbone | until=layer3 | PREFIX,PREFIX (none)")->group(g_model);
  sub->add_option("--frozen-bn", (*s)["frozen_bn"],
                  "BatchNorm layers whose weights --freeze freezes: eval (default) normalises with the running "
                  "statistics and never updates them (torchvision's FrozenBatchNorm2d, a backbone in .eval()); train "
                  "uses batch statistics and updates the running ones, which is what a tutorial that only sets "
                  "requires_grad=False and calls model.train() does (use it to reproduce such a tutorial)")
      ->group(g_model);
  sub->add_option("--unfreeze-at", a->train.unfreeze_at,
                  "freeze for this many epochs (needs --freeze), then train every layer with a fresh optimizer "
                  "(momentum / Adam state start again) at --unfreeze-lr, the --sched schedule restarted over the "
                  "remaining epochs, and no BatchNorm layer frozen")
      ->group(g_model);
  sub->add_flag("--sync-bn", a->train.sync_bn,
                "under mpirun -np N: BatchNorm layers in training mode normalise with the statistics of all ranks' "
                "batches (torch.nn.SyncBatchNorm), so N ranks x batch B train as one rank x batch N*B; without it each "
                "rank uses its own batch's statistics (PyTorch DDP's default)")
      ->group(g_model);
  sub->add_option("--feature-cache", a->train.feature_cache,
                  "frozen-feature cache: when only fc trains (--freeze backbone, --frozen-bn eval) and the train "
                  "transforms are deterministic, the first epoch keeps every image's pooled features and later "
                  "epochs train fc alone on them, with the same results (automatic; 0 turns it off). With random "
                  "transforms, N keeps N augmented views per image: epoch e trains on the augmentations of epoch "
                  "e mod N. Dropped at --unfreeze-at")
      ->group(g_model);
  sub->add_option("--unfreeze-lr", a->train.unfreeze_lr,
                  "LR after unfreezing: the head's, and the backbone stages' times their --lr-mult (without "
                  "--lr-mult: the same LR for every layer); default --lr / 10")
      ->group(g_model);

  auto g_opt = "Optimisation";
  auto& o = a->train.opt;
  sub->add_option("--epochs", a->train.epochs, "epochs (10)")->group(g_opt);
  sub->add_option("--opt", o.kind, "sgd | adam | adamw | rmsprop (sgd)")->group(g_opt);
  sub->add_option("--lr", o.lr, "learning rate of the head (0.01)")->group(g_opt);
  sub->add_option("--lr-scale", a->lr_scale,
                  "under mpirun -np N: linear multiplies --lr and --unfreeze-lr by N for the N-times larger global "
                  "batch (the linear-scaling rule); none (default) keeps them as given")
      ->group(g_opt);
  sub->add_option("--lr-mult", (*s)["lr_mult"],
                  "per-stage LR = lr x multiplier, e.g. layer4=0.5,layer3=0.2,backbone=0.1 (stages: stem, layer1-4; "
                  "backbone = the rest; default 1)")
      ->group(g_opt);
  sub->add_option("--wd", o.weight_decay, "weight decay (0)")->group(g_opt);
  sub->add_option("--momentum", o.momentum, "SGD/RMSprop momentum (0.9)")->group(g_opt);
  sub->add_flag("--nesterov", o.nesterov, "Nesterov momentum (SGD)")->group(g_opt);
  sub->add_option("--betas", *betas, "Adam betas, e.g. --betas 0.9 0.999")->expected(2)->group(g_opt);
  sub->add_option("--eps", o.eps, "Adam/RMSprop eps (1e-8)")->group(g_opt);
  sub->add_flag("--amsgrad", o.amsgrad, "AMSGrad variant (Adam/AdamW)")->group(g_opt);
  sub->add_option("--sched", a->train.sched,
                  "LR schedule, e.g. step:step_size=7,gamma=0.1 | cosine | onecycle:max_lr=0.01 | plateau:patience=2")
      ->group(g_opt);
  sub->add_option("--clip-norm", a->train.clip_norm, "clip the gradients' global L2 norm to this")->group(g_opt);
  sub->add_option("--clip-value", a->train.clip_value, "clip every gradient element to [-v, v]")->group(g_opt);
  sub->add_option("--label-smoothing", a->train.label_smoothing, "cross-entropy label smoothing (0)")->group(g_opt);

  sub->add_option("--out", a->out, "run folder (required unless --resume)");
  sub->add_option("--resume", *resume, "continue the run in this folder exactly where it stopped");
  sub->add_option("--seed", a->seed, "seed for initialisation, shuffling and augmentation (0)");
  sub->add_option("--device", a->device, "auto | cpu | cuda | cuda:N (auto)");
  sub->add_option("--precision", a->precision,
                  "auto | fp32 | bf16: bf16 mixed precision (fp32 master weights, BN statistics and loss); on the CPU "
                  "bf16 convolution products with fp32 tensors; auto = bf16 where the GPU or CPU (AVX512_BF16/AMX) has "
                  "it in hardware, else fp32")
      ->check(CLI::IsMember({"auto", "fp32", "bf16"}));
  auto cpu_backend = std::make_shared<std::string>();
  add_cpu_backend_option(sub, *cpu_backend);
  auto compute_threads = std::make_shared<int>(0);
  add_compute_threads_option(sub, *compute_threads)->group(g_data);
  sub->add_flag("--no-progress", *no_progress, "no progress bar even on a terminal");
  sub->add_option("--stop-after", a->stop_after, "stop once this many epochs are done; --resume continues (train in chunks)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--time-budget", *budget,
                  "stop after the epoch past which another one (as long as the longest so far) would end beyond "
                  "this much training time, e.g. 90s, 20m, 1.5h; the run folder stays resumable (--resume continues; "
                  "a schedule does not shrink to fit)");

  sub->callback([sub, a, s, resume, betas, no_progress, budget, cpu_backend, compute_threads] {
    finetune::ensure_passive_omp_wait();
    apply_cpu_backend(*cpu_backend);
    cpu::set_compute_threads(*compute_threads);
    a->progress = !*no_progress;
    if (!budget->empty()) {
      try {
        a->time_budget_s = finetune::parse_duration(*budget);
      } catch (const Error& e) {
        throw CLI::ValidationError("--time-budget", e.what());
      }
    }
    if (!resume->empty()) {
      // The run's own arguments come from its checkpoint; only these may change.
      for (auto* opt : sub->get_options()) {
        const std::string n = opt->get_name();
        if (opt->count() && n != "--resume" && n != "--epochs" && n != "--device" && n != "--threads" && n != "--compute-threads" && n != "--cache-mib" &&
            n != "--no-progress" && n != "--stop-after" && n != "--time-budget" && n != "--cpu-backend" &&
            n != "--help")
          throw CLI::ValidationError(n, "cannot be changed when resuming (the run keeps its own settings); only --epochs, "
                                        "--device, --threads, --compute-threads, --cache-mib, --stop-after, --time-budget and "
                                        "--cpu-backend may be given with --resume");
      }
      auto* ep = sub->get_option("--epochs");
      auto* dv = sub->get_option("--device");
      finetune::with_size_advice("--resume " + *resume, "the run's --batch or --image-size is more than this machine holds", [&] {
        finetune::resume_training(*resume, ep->count() ? a->train.epochs : 0, dv->count() ? a->device : "", a->threads, a->cache_mib,
                        a->stop_after, a->time_budget_s);
      });
      return;
    }
    if (!(*s)["pretrained"].empty() && !a->weights.empty())
      throw CLI::ValidationError("--pretrained none", "contradicts --weights");
    try {  // malformed specs are usage errors
      if (!(*s)["freeze"].empty()) a->train.freeze = finetune::parse_freeze((*s)["freeze"]);
      if (!(*s)["frozen_bn"].empty()) a->train.frozen_bn = finetune::parse_frozen_bn((*s)["frozen_bn"]);
      if (!(*s)["lr_mult"].empty()) a->train.opt.lr_mult = finetune::parse_lr_mult((*s)["lr_mult"]);
    } catch (const Error& e) {
      throw CLI::ValidationError(e.what());
    }
    if (betas->size() == 2) a->train.opt.beta1 = (*betas)[0], a->train.opt.beta2 = (*betas)[1];
    finetune::with_size_advice(fmt::format("--batch {} at --image-size {}", a->batch, a->image_size),
                     "lower --batch or --image-size (or --width, --cache-mib)", [&] { finetune::run_training(*a); });
  });
}

}  // namespace rtune::tools
