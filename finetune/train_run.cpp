#include "finetune/train_run.h"
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <omp.h>
#include <unistd.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include "engine/printable.h"
#include "engine/sched/spec.h"
#include "finetune/batch.h"
#include "finetune/data_parallel.h"
#include "io/formats/checkpoint.h"
#include "finetune/report/metrics_log.h"
#include "finetune/report/run_report.h"
#include "engine/rng.h"
#include "finetune/model_file.h"
#include "finetune/convert.h"
#include "finetune/run_folder.h"

namespace rtune::finetune {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------- arguments <-> JSON (for resume)

nlohmann::json TrainArgs::to_json() const {
  const auto& t = train;
  return {{"data", data}, {"train_list", train_list}, {"val_list", val_list}, {"list_root", list_root}, {"val", val},
          {"val_split", val_split}, {"classes", classes}, {"arch", arch}, {"width", width}, {"weights", weights},
          {"reset_head", reset_head}, {"epochs", t.epochs}, {"batch", batch}, {"image_size", image_size},
          {"transforms", transforms}, {"val_transforms", val_transforms}, {"optimizer", t.opt.to_json()},
          {"sched", t.sched}, {"clip_norm", t.clip_norm}, {"clip_value", t.clip_value},
          {"label_smoothing", t.label_smoothing}, {"freeze", t.freeze.str()},
          {"frozen_bn", std::string(finetune::frozen_bn_name(t.frozen_bn))}, {"unfreeze_at", t.unfreeze_at},
          {"unfreeze_lr", t.unfreeze_lr}, {"seed", seed}, {"device", device}, {"precision", precision}, {"threads", threads}, {"out", out},
          {"strict", strict}, {"feature_cache", t.feature_cache}, {"sync_bn", t.sync_bn}, {"lr_scale", lr_scale}};
}

TrainArgs TrainArgs::from_json(const nlohmann::json& j) {
  TrainArgs a;
  try {
    a.data = j.at("data"), a.train_list = j.at("train_list"), a.val_list = j.at("val_list");
    a.list_root = j.at("list_root"), a.val = j.at("val"), a.val_split = j.at("val_split"), a.classes = j.at("classes");
    a.arch = j.at("arch"), a.width = j.at("width"), a.weights = j.at("weights"), a.reset_head = j.at("reset_head");
    a.train.epochs = j.at("epochs"), a.batch = j.at("batch"), a.image_size = j.at("image_size");
    a.transforms = j.at("transforms"), a.val_transforms = j.at("val_transforms");
    const auto& o = j.at("optimizer");
    auto& c = a.train.opt;
    c.kind = o.at("kind"), c.lr = o.at("lr"), c.weight_decay = o.at("weight_decay"), c.momentum = o.at("momentum");
    c.dampening = o.at("dampening"), c.nesterov = o.at("nesterov"), c.beta1 = o.at("beta1"), c.beta2 = o.at("beta2");
    c.eps = o.at("eps"), c.amsgrad = o.at("amsgrad"), c.alpha = o.at("alpha"), c.centered = o.at("centered");
    c.lr_mult = finetune::parse_lr_mult(o.at("lr_mult").get<std::string>());
    a.train.sched = j.at("sched"), a.train.clip_norm = j.at("clip_norm"), a.train.clip_value = j.at("clip_value");
    a.train.label_smoothing = j.at("label_smoothing");
    a.train.freeze = finetune::parse_freeze(j.at("freeze").get<std::string>());
    a.train.frozen_bn = finetune::parse_frozen_bn(j.at("frozen_bn").get<std::string>());
    a.train.unfreeze_at = j.at("unfreeze_at"), a.train.unfreeze_lr = j.at("unfreeze_lr");
    a.seed = j.at("seed"), a.device = j.at("device"), a.precision = j.at("precision"), a.threads = j.at("threads"), a.out = j.at("out");
    a.train.sync_bn = j.value("sync_bn", false);  // absent from runs saved before --sync-bn existed
    a.lr_scale = j.value("lr_scale", std::string("none"));
    a.strict = j.value("strict", false);  // absent from runs saved before --strict existed
    a.train.feature_cache = j.value("feature_cache", int64_t(-1));  // absent before --feature-cache existed
  } catch (const nlohmann::json::exception& e) {
    fail("the run's saved arguments are malformed: {}", e.what());
  }
  return a;
}

void TrainArgs::validate() const {
  if (out.empty()) invalid_argument("--out RUN_DIR is required");
  if (data.empty() && train_list.empty()) invalid_argument("--data or --train-list is required");
  if (!(val_split >= 0 && val_split <= 0.95)) invalid_argument("--val-split {}: must be in [0, 0.95]", val_split);
  if (width < 1 || width > 1024) invalid_argument("--width {}: must be in [1, 1024]", width);
  if (batch < 1) invalid_argument("--batch {}: must be >= 1", batch);
  if (image_size < 8 || image_size > 4096) invalid_argument("--image-size {}: must be in [8, 4096]", image_size);
  for (const auto& [flag, spec] : {std::pair{"--transforms", &transforms}, std::pair{"--val-transforms", &val_transforms}}) {
    try {
      if (!spec->empty()) io::parse_pipeline(*spec);
    } catch (const Error& e) {
      invalid_argument("{} '{}': {}", flag, *spec, e.what());
    }
  }
  if (time_budget_s < 0) invalid_argument("--time-budget: must be > 0");
  if (lr_scale != "none" && lr_scale != "linear") invalid_argument("--lr-scale {}: must be none or linear", lr_scale);
  train.validate();
}

// ---------------------------------------------------------------- devices, presets

Device resolve_device(const std::string& spec, std::string* note) {
  auto try_cuda = [](Device d, std::string* why) {
    try {
      empty({1}, {DType::f32, d});  // the CUDA backend registers its allocator; without it this throws
      return true;
    } catch (const std::exception& e) {
      if (why) *why = e.what();
      return false;
    }
  };
  if (spec == "cpu") return Device::cpu();
  if (spec == "auto") {
    std::string why;
    if (try_cuda(Device::cuda(0), &why)) {
      if (note) *note = "auto: cuda:0";
      return Device::cuda(0);
    }
    // Say plainly that the CPU was chosen and why; the backend's message ends in advice for --device cuda.
    if (note)
      *note = why.find("no CUDA GPU found") != std::string::npos ? "auto: no CUDA GPU found, using the CPU"
              : why.find("built without CUDA") != std::string::npos
                  ? "auto: no CUDA GPU found, using the CPU (this rtune was built without CUDA)"
                  : fmt::format("auto: cuda:0 is not usable, using the CPU ({})", why);
    return Device::cpu();
  }
  Device d;
  try {
    d = Device::parse(spec);
  } catch (const Error&) {
    fail("--device '{}': expected auto, cpu, cuda or cuda:N", spec);
  }
  if (d.is_cuda()) {
    std::string why;
    if (!try_cuda(d, &why))
      fail("--device {}: cannot use this device ({}). This rtune has no working CUDA backend for it; "
           "use --device cpu (rtune never falls back to the CPU on its own)", spec, why);
  }
  return d;
}

std::string rank_device_spec(const std::string& spec, const dist::Comm& comm) {
  if (comm.size() == 1 || (spec != "auto" && spec != "cuda")) return spec;
  const int count = kernels::cuda_device_count();
  if (count == 0) return spec;  // resolve_device says why (auto: the CPU)
  const int local = dist::launched_local_rank(), on_machine = dist::launched_local_size();
  if (count == 1) {
    // One visible GPU: each rank's own (CUDA_VISIBLE_DEVICES per rank, Slurm's --gpus-per-task), or the
    // machine's only one, which ranks cannot share (NCCL refuses two ranks on one GPU).
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    if (on_machine > 1 && !(visible && *visible))
      fail("--device {}: {} ranks on this machine would share its one GPU: start one rank per GPU, or give each rank "
           "its own with CUDA_VISIBLE_DEVICES", spec, on_machine);
    return "cuda:0";
  }
  if (local < count) return fmt::format("cuda:{}", local);
  fail("--device {}: rank {} is local rank {} of {} on this machine, which has {} GPUs: start at most one rank per GPU",
       spec, comm.rank(), local, on_machine, count);
}

double parse_duration(const std::string& text) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const std::string unit = text.substr(used);
  const double scale = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : 0;
  if (used == 0 || scale == 0 || !(v > 0) || !std::isfinite(v))
    fail("'{}' is not a duration: expected a positive number of seconds, or with s, m or h (90s, 20m, 1.5h)",
         printable(text));
  return v * scale;
}

std::string default_train_transforms(int64_t size) {
  return fmt::format("random_resized_crop={},hflip,normalize=imagenet", size);
}
std::string default_eval_transforms(int64_t size) {
  return fmt::format("resize={},center_crop={},normalize=imagenet", size * 256 / 224, size);
}

namespace {

bool is_dir(const std::string& p) { return !p.empty() && fs::is_directory(p); }

// ---------------------------------------------------------------- data

struct Data {
  io::Dataset train, val;
  bool has_val = false;
  std::vector<std::string> classes;  // display names by label
  std::vector<std::string> folders;  // ImageFolder: the class folders by label (eval matches them); else empty
  std::vector<std::string> notes;
};

std::vector<std::string> numbered(int64_t n) {
  std::vector<std::string> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(std::to_string(i));
  return v;
}

// Stratified, seeded hold-out: each class keeps round(frac * n) samples for validation, drawn by
// a seeded shuffle, so the split depends only on (seed, file list).
void split_val(Data& d, double frac, uint64_t seed) {
  std::map<int64_t, std::vector<size_t>> by_class;
  for (size_t i = 0; i < d.train.samples.size(); ++i) by_class[d.train.samples[i].label].push_back(i);
  std::vector<bool> to_val(d.train.samples.size(), false);
  Rng rng = Rng::for_key(seed, 0x5e1f5711u);
  for (auto& [label, idx] : by_class) {
    rng.shuffle(std::span<size_t>(idx));
    const size_t k = std::min(idx.size() - 1, size_t(double(idx.size()) * frac + 0.5));
    for (size_t i = 0; i < k; ++i) to_val[idx[i]] = true;
  }
  io::Dataset tr = d.train, va = d.train;
  tr.samples.clear(), va.samples.clear();
  for (size_t i = 0; i < d.train.samples.size(); ++i) (to_val[i] ? va : tr).samples.push_back(d.train.samples[i]);
  d.train = std::move(tr), d.val = std::move(va);
  d.has_val = !d.val.samples.empty();
  d.notes.push_back(fmt::format("--val-split {}: {} training / {} validation images (stratified, seed {})", frac,
                                d.train.samples.size(), d.val.samples.size(), seed));
}

Data open_data(const TrainArgs& a) {
  Data d;
  io::ScanOptions scan;
  scan.strict = a.strict;
  const int sources = !a.data.empty() + !a.train_list.empty();
  if (sources != 1) fail("give exactly one of --data DIR or --train-list FILE");
  const int vals = !a.val.empty() + !a.val_list.empty() + (a.val_split > 0);
  if (vals > 1) fail("give at most one of --val DIR, --val-list FILE, --val-split FRACTION");
  std::string val_dir = a.val;
  if (!a.data.empty()) {
    if (!is_dir(a.data)) fail("--data {}: not a folder", a.data);
    if (is_dir(a.data + "/train")) {
      d.train = io::image_folder(fs::path(a.data) / "train", scan);
      // The validation folder's usual names: torchvision's "val", the flowers tutorial's "valid".
      for (const char* name : {"val", "valid", "validation"}) {
        if (vals != 0 || !is_dir(a.data + "/" + name)) continue;
        val_dir = a.data + "/" + name;
        d.notes.push_back(fmt::format("using {}/train and {}/{}", a.data, a.data, name));
        break;
      }
    } else {
      d.train = io::image_folder(a.data, scan);
    }
    d.classes = d.train.classes;
  } else {
    const fs::path root = a.list_root.empty() ? fs::path(a.train_list).parent_path() : fs::path(a.list_root);
    d.train = io::list_file_dataset(a.train_list, root, scan);
    if (!a.val_list.empty()) {
      d.val = io::list_file_dataset(a.val_list, a.list_root.empty() ? fs::path(a.val_list).parent_path() : root, scan);
      d.has_val = true;
    }
  }
  if (d.train.samples.empty()) fail("no training images found in {}", a.data.empty() ? a.train_list : a.data);
  if (!val_dir.empty()) {
    d.val = io::image_folder(val_dir, scan);
    d.has_val = true;
    if (!d.classes.empty() && d.val.classes != d.classes)
      fail("--val {}: its class folders ({}) differ from the training set's ({})", val_dir,
           printable_list(d.val.classes), printable_list(d.classes));
  } else if (!a.val_list.empty() && a.train_list.empty()) {
    d.val = io::list_file_dataset(a.val_list, fs::path(a.val_list).parent_path(), scan);
    d.has_val = true;
  }
  if (a.val_split > 0) split_val(d, a.val_split, a.seed);
  int64_t n = d.train.num_classes();
  if (d.has_val) n = std::max(n, d.val.num_classes());
  d.folders = d.train.classes;
  if (!a.classes.empty() && !d.folders.empty()) {
    ClassNames cn = names_for_folders(a.classes, d.folders);
    d.classes = cn.names;
    d.notes.push_back(cn.note);
  } else if (!a.classes.empty()) {
    auto names = read_class_names(a.classes).names;
    if (int64_t(names.size()) < n) fail("--classes {}: {} names for {} classes", a.classes, names.size(), n);
    d.classes = names;
  } else if (d.classes.empty()) {
    d.classes = numbered(n);
  }
  if (d.has_val && d.val.samples.empty()) fail("the validation set is empty");
  if (!d.has_val) d.notes.push_back(fmt::format("no validation set: {} is chosen by training accuracy", run_file::best_model));
  return d;
}

// ---------------------------------------------------------------- normalisation

std::string norm_str(const io::Normalize& n) {
  if (n.mean == io::kImageNetNormalize.mean && n.std == io::kImageNetNormalize.std) return "normalize=imagenet";
  return fmt::format("normalize={}:{}:{}/{}:{}:{}", n.mean[0], n.mean[1], n.mean[2], n.std[0], n.std[1], n.std[2]);
}

// Training and validation inputs normalised differently make validation measure another input
// distribution than the one the model learns on (e.g. cifar-train without normalize beside
// normalize=imagenet): say so, naming both. A val pipeline without normalize uses the training's.
std::string normalisation_mismatch(const std::string& tf, const io::Pipeline& tp, const std::string& vtf,
                                   const io::Pipeline& vp) {
  if (!vp.normalize) return {};
  if (!tp.normalize)
    return fmt::format("training transforms '{}' do not normalise (ToTensor only: pixels in [0, 1]) but validation "
                       "transforms '{}' use {}; add the same normalize to both", tf, vtf, norm_str(*vp.normalize));
  if (tp.normalize->mean != vp.normalize->mean || tp.normalize->std != vp.normalize->std)
    return fmt::format("training transforms '{}' use {} but validation transforms '{}' use {}; use the same normalize "
                       "in both", tf, norm_str(*tp.normalize), vtf, norm_str(*vp.normalize));
  return {};
}

// ---------------------------------------------------------------- progress

std::string hms(double s) {
  int t = int(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02d}:{:02d}", t / 3600, t / 60 % 60, t % 60) : fmt::format("{}:{:02d}", t / 60, t % 60);
}

struct Bar {
  bool tty;
  mutable Clock::time_point last{};
  void update(const finetune::Progress& p) const {
    if (!tty) return;
    // At most ~10 redraws a second, plus the last batch of each pass.
    const auto now = Clock::now();
    if (p.batch != p.batches && now - last < std::chrono::milliseconds(100)) return;
    last = now;
    const double rate = p.seconds > 0 ? double(p.images) / p.seconds : 0;
    const double eta = p.batch > 0 ? p.seconds / double(p.batch) * double(p.batches - p.batch) : 0;
    const int width = 24, filled = p.batches ? int(width * p.batch / p.batches) : 0;
    std::string bar(size_t(filled), '#');
    bar.resize(size_t(width), '.');
    if (p.validating)
      std::fprintf(stderr, "\r\033[Kepoch %lld/%lld validating [%s] %lld/%lld", (long long)p.epoch, (long long)p.epochs,
                   bar.c_str(), (long long)p.batch, (long long)p.batches);
    else
      std::fprintf(stderr, "\r\033[Kepoch %lld/%lld [%s] %lld/%lld  %.0f img/s  ETA %s  loss %.4f  lr %.3g",
                   (long long)p.epoch, (long long)p.epochs, bar.c_str(), (long long)p.batch, (long long)p.batches, rate,
                   hms(eta).c_str(), p.loss, p.lr);
    std::fflush(stderr);
  }
  void clear() const {
    if (tty) std::fprintf(stderr, "\r\033[K"), std::fflush(stderr);
  }
};

// How full the decoded-image caches are (printed after the first epoch that filled them).
std::string cache_line(const io::Loader& train, const io::Loader* val) {
  auto one = [](const io::Loader& l) {
    const io::DecodedCache& c = *l.cache();
    return fmt::format("{} of {} images, {:.0f} of {:.0f} MiB", c.entries(), c.size(), double(c.bytes_used()) / (1 << 20),
                       double(c.budget()) / (1 << 20));
  };
  std::string s = "decoded-image cache: train " + one(train);
  if (val) s += "; val " + one(*val);
  if (train.cache()->entries() < train.cache()->size())
    s += " (images over the budget are decoded every epoch; JPEGs then only down to their crop box)";
  return s;
}

void say(const TrainIO& io, const std::string& line) {
  if (io.out) io.out(line);
  else std::printf("%s\n", line.c_str()), std::fflush(stdout);
}

// ---------------------------------------------------------------- the run

TrainOutcome run(const TrainArgs& a, const io::Checkpoint* resume_from, const TrainIO& io_in) {
  auto t_start = Clock::now();
  a.validate();
  // mpirun -np N: this process is one rank; rank 0 alone writes the run folder and prints.
  dist::Comm& comm = dist::world();
  const bool writer = comm.rank() == 0;
  TrainIO io = io_in;
  if (!writer) io.out = [](const std::string&) {};
  const int rank_threads = share_cores_between_ranks(comm, a.threads);
  std::string dev_note;
  const Device device = resolve_device(rank_device_spec(a.device, comm), &dev_note);
  Data d = open_data(a);
  const int64_t num_classes = int64_t(d.classes.size());
  check_same_on_every_rank(comm, "arguments", a.to_json().dump());
  check_same_on_every_rank(comm, "data", data_fingerprint(d.train, d.has_val ? &d.val : nullptr, d.classes));

  // Model: pretrained (head replaced when the class count differs) or from scratch.
  std::unique_ptr<models::ResNet> model;
  std::string model_note, head_note;
  if (!a.weights.empty() && a.weights != "none") {
    finetune::LoadedModel lm = finetune::load_model(a.weights, {.arch = "", .num_classes = num_classes,
                                                            .replace_head = true, .head_seed = a.seed});
    if (lm.info.arch != a.arch && !a.arch.empty())
      fail("--arch {} but --weights {} holds a {}", a.arch, a.weights, lm.info.arch);
    model = std::move(lm.model);
    if (a.reset_head && !lm.report.head_replaced) model->reset_head(num_classes, a.seed);
    const bool new_head = lm.report.head_replaced || a.reset_head;
    model_note = fmt::format("{} (width {}) from {}{}", lm.info.arch, lm.info.width, a.weights,
                             new_head ? fmt::format(", new {}-class head", num_classes) : "");
    // The same class count keeps the trained head: right when continuing on the same classes, a silent
    // surprise when the data are new classes that merely number the same.
    if (!new_head)
      head_note = fmt::format("  kept the weights' {}-class head (the data have as many classes); its outputs "
                                "start as the weights' classes. For new classes, start a new head with --reset-head",
                                num_classes);
  } else {
    const std::string arch = a.arch.empty() ? "resnet18" : a.arch;
    models::arch_layers(arch);
    model = std::make_unique<models::ResNet>(models::ResNetConfig{arch, a.width, num_classes, false, a.seed});
    model_note = fmt::format("{} (width {}) from scratch, seed {}", arch, a.width, a.seed);
  }
  model->to(device);
  check_same_on_every_rank(comm, "model", model_fingerprint(*model));
  broadcast_model(comm, *model);  // every rank starts from rank 0's weights, as DDP does

  // Transforms and loaders.
  const std::string tf = a.transforms.empty() ? default_train_transforms(a.image_size) : a.transforms;
  const std::string vtf = a.val_transforms.empty() ? default_eval_transforms(a.image_size) : a.val_transforms;
  io::Pipeline tp = io::parse_pipeline(tf), vp = io::parse_pipeline(vtf);
  // resize=S last is accepted as torchvision's Resize(S) is: the loader stops at the first non-square image.
  if (!tp.batch_size()) fail("--transforms '{}' does not end in a fixed size (add a crop)", tf);
  if (!vp.batch_size()) fail("--val-transforms '{}' does not end in a fixed size (add center_crop=S)", vtf);
  if (std::string w = normalisation_mismatch(tf, tp, vtf, vp); !w.empty() && d.has_val)
    std::fprintf(stderr, "warning: %s\n", w.c_str());
  io::LoaderOptions lo;
  lo.batch_size = int(a.batch);
  lo.threads = rank_threads;
  lo.shard_rank = size_t(comm.rank()), lo.shard_count = size_t(comm.size());  // padded: equal steps on every rank
  lo.seed = a.seed;
  lo.strict = a.strict;  // else a file that fails later (changed since the scan) is replaced, with a warning
  lo.cache_bytes = size_t(a.cache_mib) << 20;  // each loader: its own budget (batches are the same either way)
  lo.host_memory = finetune::pinned_host_memory(device);  // batches copied to the GPU as DMA from pinned memory
  io::Loader train_loader(d.train, tp, lo);
  lo.shuffle = false;
  lo.skip_bad = true;  // validation leaves a bad image out: a substitute would count another image twice
  lo.shard_pad = false;  // each validation image scored once, on one rank
  std::unique_ptr<io::Loader> val_loader;
  if (d.has_val) val_loader = std::make_unique<io::Loader>(d.val, vp, lo);

  finetune::TrainConfig cfg = a.train;
  if (a.lr_scale == "linear") {  // every run start, resumes included: the LRs follow the current rank count
    cfg.opt.lr *= double(comm.size());
    cfg.unfreeze_lr *= double(comm.size());
  }
  cfg.device = device;
  cfg.precision = nn::parse_precision(a.precision, device);
  cfg.train_norm = tp.normalize.value_or(io::Normalize{});
  cfg.val_norm = vp.normalize.value_or(cfg.train_norm);
  finetune::Trainer trainer(*model, train_loader, val_loader.get(), num_classes, cfg, comm);

  const fs::path dir(a.out);
  std::optional<RunFolder> folder;
  if (writer) folder.emplace(dir, resume_from ? "--resume" : "--out");  // created, locked, temp files removed
  TrainOutcome outc;
  outc.run_dir = dir;
  outc.best = dir / run_file::best_model;
  outc.last = dir / run_file::checkpoint;
  outc.report = dir / run_file::report;
  outc.class_names = d.classes;

  if (resume_from) {
    trainer.restore(*resume_from);
    say(io, fmt::format("resuming {} after epoch {} of {}", dir.string(), trainer.epoch(), a.train.epochs));
  } else {
    say(io, fmt::format("model: {}", model_note));
    if (!head_note.empty()) say(io, head_note);
  }
  say(io, fmt::format("data: {} classes, {} training images{}", num_classes, d.train.samples.size(),
                      d.has_val ? fmt::format(", {} validation images", d.val.samples.size()) : std::string()));
  for (auto& n : d.notes) say(io, "  " + n);
  say(io, fmt::format("device: {}{}, {}; train transforms: {}; val transforms: {}", device.str(),
                      dev_note.empty() ? "" : " (" + dev_note + ")", nn::precision_name(cfg.precision), tp.describe(),
                      vp.describe()));
  // Who gets the cores: measured on 2 cores (bench/RESULTS.md), the compute wants every core and the loader,
  // which sleeps once its prefetched batches are ready, costs it nothing measurable sharing them.
  const int loader_threads = train_loader.threads();
  say(io, device.is_cpu() ? fmt::format("threads: {} data loading (--threads), {} compute (--compute-threads)",
                                        loader_threads, omp_get_max_threads())
                          : fmt::format("threads: {} data loading (--threads)", loader_threads));
  if (comm.size() > 1) {
    const std::vector<std::string> devices = comm.allgather(device.str());  // every rank calls it
    say(io, fmt::format("ranks' devices: {}; gradients: {}", fmt::join(devices, ", "), trainer.gradient_sync_note()));
  }
  if (comm.size() > 1)
    say(io, fmt::format("ranks: {}, {} threads each; batch {} per rank, global batch {} ({})", comm.describe(),
                        omp_get_max_threads(), a.batch, a.batch * comm.size(),
                        a.lr_scale == "linear"
                            ? fmt::format("--lr-scale linear: lr {:g} x {} ranks = {:g}", a.train.opt.lr, comm.size(), cfg.opt.lr)
                            : fmt::format("the LR is not scaled for it; --lr-scale linear would multiply it by {}", comm.size())));
  if (const int64_t had = resume_from ? resume_from->state.value("ranks", int64_t(1)) : comm.size(); had != comm.size())
    say(io, fmt::format("the run had {} rank(s) and continues on {}: the epochs' shuffled orders are the same, but from "
                        "here on they are dealt to the ranks differently and the global batch is {} (was {}){}",
                        had, comm.size(), a.batch * comm.size(), a.batch * had,
                        a.lr_scale == "linear" ? fmt::format("; --lr-scale linear: lr {:g}", cfg.opt.lr) : std::string()));
  const auto& fr = trainer.freeze_result();
  say(io, fmt::format("freeze: {} ({} trainable / {} frozen parameters, frozen BN: {}); optimizer: {} lr {:g}{}",
                      cfg.freeze.str(), fr.trainable_params, fr.frozen_params, finetune::frozen_bn_name(cfg.frozen_bn),
                      cfg.opt.kind, cfg.opt.lr, cfg.sched.empty() ? "" : "; schedule: " + cfg.sched));
  say(io, trainer.feature_cache_note());

  finetune::ModelInfo info;
  info.class_names = d.classes;
  info.class_folders = d.folders;
  info.eval_transforms = vtf;  // eval/predict reproduce the logged validation accuracy from the file alone
  if (auto s = vp.batch_size()) info.input_size = s->first;
  for (int c = 0; c < 3; ++c) info.mean[size_t(c)] = cfg.val_norm.mean[size_t(c)], info.std[size_t(c)] = cfg.val_norm.std[size_t(c)];
  info.source = a.weights.empty() ? "trained from scratch by rtune train" : "fine-tuned from " + fs::path(a.weights).filename().string();

  const nlohmann::json args_json = a.to_json();
  const Bar bar{a.progress && ::isatty(2) != 0};
  auto write_report = [&] {
    finetune::RunReportInputs in;
    in.title = "rtune training run: " + dir.filename().string();
    in.facts = {{"model", model_note},
                {"data", fmt::format("{} classes; {} train / {} val images", num_classes, d.train.samples.size(),
                                     d.has_val ? d.val.samples.size() : 0)},
                {"recipe", fmt::format("{} epochs, batch {}, {} lr {:g}, wd {:g}{}{}", a.train.epochs, a.batch, cfg.opt.kind,
                                       cfg.opt.lr, cfg.opt.weight_decay, cfg.sched.empty() ? "" : ", " + cfg.sched,
                                       cfg.freeze.kind == finetune::FreezeSpec::Kind::none ? "" : ", freeze " + cfg.freeze.str())},
                {"transforms", "train: " + tp.describe() + "; val: " + vp.describe()},
                {"device", fmt::format("{}, {}", device.str(), nn::precision_name(cfg.precision))},
                {"feature cache", trainer.feature_cache_note().substr(sizeof("feature cache: ") - 1)},
                {"best", fmt::format("val top-1 {:.2f}% at epoch {}", 100 * trainer.best_top1(), trainer.best_epoch())}};
    in.history = &trainer.history();
    in.steps = &trainer.steps();
    in.eval = trainer.last_eval();
    in.best_eval = trainer.best_eval();
    in.best_epoch = trainer.best_epoch();
    in.lr_groups = trainer.lr_groups();
    in.class_names = d.classes;
    in.train_tiles = finetune::augmented_tiles(train_loader, d.train, d.classes, 16);
    if (trainer.last_eval() && val_loader) in.val_tiles = finetune::prediction_tiles(*val_loader, *trainer.last_eval(), d.classes);
    finetune::write_report(outc.report, finetune::build_run_report(in));
  };

  finetune::Hooks hooks;
  hooks.on_batch = [&](const finetune::Progress& p) { bar.update(p); };
  hooks.log = [&](const std::string& s) {
    bar.clear();
    say(io, s);
  };
  bool cache_reported = false;
  hooks.on_epoch = [&](const finetune::EpochRecord& r) {
    kill_point("epoch-end", r.epoch);  // every rank, before anything is written
    bar.clear();
    say(io, fmt::format("epoch {}/{}: train loss {:.4f} top-1 {:.2f}%{} | lr {:.3g} | {:.1f}s, {:.0f} img/s{}", r.epoch,
                        a.train.epochs, r.train_loss, 100 * r.train_top1,
                        r.has_val ? fmt::format(" | val loss {:.4f} top-1 {:.2f}% top-5 {:.2f}%", r.val_loss,
                                                100 * r.val_top1, 100 * r.val_top5)
                                  : std::string(),
                        r.lr, r.seconds, r.images_per_s, r.best ? " *best" : ""));
    if (comm.size() > 1)
      say(io, fmt::format("  all-reduce: {:.2f}s, {:.0f}% of the epoch (waiting for the slowest rank included)",
                          r.comm_seconds, r.seconds > 0 ? 100 * r.comm_seconds / (r.seconds) : 0.0));
    if (train_loader.cache() && !cache_reported) say(io, cache_line(train_loader, val_loader.get()));
    cache_reported = true;  // after this process's first epoch, which filled the caches
    if (!writer) return;
    // The order of these writes is what makes a kill at any instant repairable (run_folder.h).
    if (r.best) {
      model->to(Device::cpu());
      finetune::save_model(folder->pending_best(r.epoch), *model, info);
      model->to(device);
      kill_point("best", r.epoch);
    }
    io::Checkpoint ck = trainer.checkpoint();
    ck.state["args"] = args_json;
    ck.state["classes"] = d.classes;
    ck.state["ranks"] = comm.size();
    io::AtomicWriteHooks ck_hooks;
    if (kill_point_armed("ckpt-write", r.epoch)) {  // dies half-way through the checkpoint's bytes
      ck_hooks.chunk_bytes = 4096;
      ck_hooks.before_chunk = [&](size_t written, size_t) { if (written > 0) kill_point("ckpt-write", r.epoch); };
    }
    io::save_checkpoint(outc.last, ck, ck_hooks);  // the commit point of epoch r.epoch
    kill_point("ckpt", r.epoch);
    if (r.best) folder->promote_best(r.epoch);
    kill_point("promote", r.epoch);
    finetune::write_metrics(dir, trainer, d.classes);
    kill_point("metrics", r.epoch);
    write_report();
  };
  if (writer && resume_from) {
    // Finish what the run before this one committed (it may have been killed after its checkpoint).
    folder->settle_pending_best(trainer.best_epoch());
    finetune::write_metrics(dir, trainer, d.classes);
    write_report();
  } else if (writer) {
    folder->settle_pending_best(0);  // none of them was committed
  }
  if (writer && folder->removed_temp_files() > 0)
    say(io, fmt::format("removed {} temp file(s) an interrupted run left in {}", folder->removed_temp_files(), dir.string()));
  // --time-budget: stop once the next epoch, estimated by the longest so far (validation and
  // checkpoint writes included), would end past the budget; the run folder stays resumable.
  const auto t_train = Clock::now();
  double longest_epoch = 0;
  bool out_of_time = false;
  while (trainer.epoch() < a.train.epochs && (a.stop_after <= 0 || trainer.epoch() < a.stop_after)) {
    const auto t_epoch = Clock::now();
    trainer.run_epoch(hooks);
    longest_epoch = std::max(longest_epoch, std::chrono::duration<double>(Clock::now() - t_epoch).count());
    const double spent = std::chrono::duration<double>(Clock::now() - t_train).count();
    if (a.time_budget_s > 0 && trainer.epoch() < a.train.epochs && spent + longest_epoch > a.time_budget_s) {
      out_of_time = true;
      break;
    }
  }
  if (writer && !fs::exists(outc.report)) write_report();
  outc.best_top1 = trainer.best_top1();
  outc.best_epoch = trainer.best_epoch();
  outc.history = trainer.history();
  outc.steps = trainer.steps();
  outc.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  if (trainer.epoch() < a.train.epochs)
    say(io, fmt::format("stopped after epoch {} of {} ({}); continue with: rtune train --resume {}", trainer.epoch(),
                        a.train.epochs,
                        out_of_time ? fmt::format("--time-budget {}: another epoch (~{}) would end past it",
                                                  a.time_budget_s < 60 ? fmt::format("{:g}s", a.time_budget_s)
                                                                       : hms(a.time_budget_s),
                                                  hms(longest_epoch))
                                    : std::string("--stop-after"),
                        dir.string()));
  say(io, fmt::format("done in {}: best {} top-1 {:.2f}% at epoch {}", hms(outc.seconds), d.has_val ? "val" : "train",
                      100 * outc.best_top1, outc.best_epoch));
  say(io, fmt::format("  model:   {}", outc.best.string()));
  say(io, fmt::format("  state:   {} (continue with: rtune train --resume {})", outc.last.string(), dir.string()));
  say(io, fmt::format("  metrics: {}, {}, {}{}", (dir / run_file::metrics_jsonl).string(),
                      (dir / run_file::metrics_csv).string(), (dir / run_file::steps_csv).string(),
                      trainer.best_eval() ? ", " + (dir / run_file::confusion).string() : std::string()));
  say(io, fmt::format("  report:  {}", outc.report.string()));
  return outc;
}

// Device memory runs out where a batch's activations are allocated, and the backend does not know the
// batch: say which flags to lower. The run folder keeps the last epoch's checkpoint (written atomically).
TrainOutcome run_with_memory_advice(const TrainArgs& a, const io::Checkpoint* resume_from, const TrainIO& io) {
  try {
    return run(a, resume_from, io);
  } catch (const DeviceOutOfMemory& e) {
    fail("{}. The device does not hold the model, its optimizer state and the activations of one batch of {}: "
         "lower --batch (e.g. --batch {}){}{}",
         e.what(), a.batch, std::max<int64_t>(1, a.batch / 2), a.precision == "fp32" ? " or use --precision bf16" : "",
         fs::exists(fs::path(a.out) / run_file::checkpoint)
             ? fmt::format("; {} keeps the last finished epoch", (fs::path(a.out) / run_file::checkpoint).string())
             : "");
  }
}

// --epochs on resume: a schedule laid out over the current phase's epochs (onecycle's total steps, cosine's
// t_max when the spec leaves them to the trainer) would become another schedule, and the checkpoint's
// state would not load into it (PyTorch's OneCycleLR refuses a step past its total): refused up front,
// naming the way out. A frozen first phase spans
// --unfreeze-at epochs whatever --epochs is; the unfreeze phase starts its schedule afresh.
void check_schedule_extends(const TrainArgs& a, int64_t phase, int64_t epochs) {
  if (a.train.sched.empty() || epochs == a.train.epochs || (a.train.unfreeze_at >= 0 && phase == 0)) return;
  const int64_t done = a.train.unfreeze_at >= 0 ? a.train.unfreeze_at : 0;
  const std::vector<double> lr{1.0};
  auto before = sched::make_scheduler(a.train.sched, lr, {a.train.epochs - done, 1});
  auto after = sched::make_scheduler(a.train.sched, lr, {epochs - done, 1});
  if (before->config() == after->config()) return;
  fail("--epochs {}: the run's --sched {} is laid out over its {} epochs, and its state cannot continue as another "
       "schedule: resume without --epochs, or start a new run with --epochs {}", epochs, a.train.sched, a.train.epochs, epochs);
}

}  // namespace

TrainOutcome run_training(const TrainArgs& args, const TrainIO& io) {
  if (!args.out.empty() && fs::exists(fs::path(args.out) / run_file::checkpoint))
    fail("--out {}: already holds a run ({}); continue it with --resume {} or choose another folder", args.out,
         run_file::checkpoint, args.out);
  return run_with_memory_advice(args, nullptr, io);
}

TrainOutcome resume_training(const fs::path& run_dir, int64_t epochs, const std::string& device, int threads,
                             int64_t cache_mib, int64_t stop_after, double time_budget_s, const TrainIO& io) {
  const fs::path last = run_dir / run_file::checkpoint;
  if (!fs::exists(last)) fail("--resume {}: no {} in that folder", run_dir.string(), run_file::checkpoint);
  io::Checkpoint ck = io::load_checkpoint(last);
  if (!ck.state.contains("args")) fail("--resume {}: {} holds no run arguments", run_dir.string(), run_file::checkpoint);
  TrainArgs a = TrainArgs::from_json(ck.state["args"]);
  a.out = run_dir.string();
  if (epochs > 0) {
    if (epochs < ck.state.value("epoch", int64_t(0)))
      fail("--epochs {}: the run already did {} epochs", epochs, ck.state.value("epoch", int64_t(0)));
    check_schedule_extends(a, ck.state.value("phase", int64_t(0)), epochs);
    a.train.epochs = epochs;
  }
  if (!device.empty()) a.device = device;
  if (threads > 0) a.threads = threads;
  a.cache_mib = cache_mib;
  a.stop_after = stop_after;
  a.time_budget_s = time_budget_s;
  return run_with_memory_advice(a, &ck, io);
}

}  // namespace rtune::finetune
