// The frozen-feature cache (finetune/feature_cache.h) on a tiny generated dataset (4 shapes, 32 px,
// ResNet-18 at width 4): with deterministic transforms a cached run equals the uncached run bit for bit
// (per-step losses, every weight, validation), and the epochs after the first read no image (every train
// and validation image is overwritten with junk after epoch 1, which a strict loader fails on); N cached views of random
// transforms equal an uncached run whose loader cycles its augmentations with period N; the unfreeze
// phase drops the cache; resume equals an uninterrupted run; the cases it must not apply to say why; and a
// cached step reads its inputs from two buffer sets sized once.
#include <doctest/doctest.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include "engine/error.h"
#include "finetune/feature_cache.h"
#include "io/formats/checkpoint.h"
#include "tests/core/test_util.h"
#include "tests/train/train_test_util.h"

using namespace rtune;
namespace fs = std::filesystem;

namespace {
constexpr int kSize = 32;
const char* kDeterministic = "resize=36,center_crop=32";
const char* kRandom = "random_crop=32:pad=2,hflip";

// One run's data, loaders and model; `period` is the train loader's augment_period (the reference runs).
struct Run {
  io::Dataset train_ds, val_ds;
  std::unique_ptr<io::Loader> train, val;
  std::unique_ptr<models::ResNet> model;
  Run(const fs::path& root, const std::string& transforms, uint64_t period = 0) {
    train_ds = io::image_folder(root / "train");
    val_ds = io::image_folder(root / "val");
    io::LoaderOptions lo;
    lo.batch_size = 6;  // 32 images: five full batches and a short one
    lo.threads = 2;
    lo.seed = 11;
    lo.strict = true;   // a missing file is an error, not a substitute
    lo.augment_period = period;
    train = std::make_unique<io::Loader>(train_ds, io::parse_pipeline(transforms), lo);
    lo.shuffle = false;
    lo.augment_period = 0;
    val = std::make_unique<io::Loader>(val_ds, io::parse_pipeline("center_crop=32"), lo);
    model = std::make_unique<models::ResNet>(models::ResNetConfig{"resnet18", 4, train_ds.num_classes(), false, 5});
  }
};

finetune::TrainConfig frozen_config(int64_t epochs, int64_t feature_cache) {
  finetune::TrainConfig cfg;
  cfg.epochs = epochs;
  cfg.freeze = finetune::parse_freeze("backbone");
  cfg.opt.kind = "sgd";
  cfg.opt.lr = 0.05;
  cfg.opt.momentum = 0.9;
  cfg.sched = "cosine";
  cfg.feature_cache = feature_cache;
  return cfg;
}

// Every image of `split` becomes bytes no decoder accepts: a loader asked for one now fails.
void spoil_images(const fs::path& root, const char* split = "train") {
  for (const auto& e : fs::recursive_directory_iterator(root / split))
    if (e.is_regular_file()) std::ofstream(e.path(), std::ios::trunc) << "not an image";
}

bool is_on(const finetune::Trainer& t) { return t.feature_cache_note().rfind("feature cache: on", 0) == 0; }

std::vector<double> losses(const finetune::Trainer& t) {
  std::vector<double> v;
  for (const auto& s : t.steps()) v.push_back(s.loss);
  return v;
}

void check_same_state(models::ResNet& a, models::ResNet& b) {
  auto sa = a.state_dict(), sb = b.state_dict();
  REQUIRE(sa.size() == sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    CAPTURE(sa[i].first);
    const Tensor x = sa[i].second->to(DType::f64), y = sb[i].second->to(DType::f64);
    CHECK(x.to_vector<double>() == y.to_vector<double>());  // bit-identical
  }
}

void check_same_run(const finetune::Trainer& a, const finetune::Trainer& b) {
  CHECK(losses(a) == losses(b));
  REQUIRE(a.history().size() == b.history().size());
  for (size_t i = 0; i < a.history().size(); ++i) {
    CAPTURE(i);
    CHECK(a.history()[i].train_loss == b.history()[i].train_loss);
    CHECK(a.history()[i].train_top1 == b.history()[i].train_top1);
    CHECK(a.history()[i].val_loss == b.history()[i].val_loss);
    CHECK(a.history()[i].lr == b.history()[i].lr);
  }
  REQUIRE(a.last_eval());
  REQUIRE(b.last_eval());
  CHECK(a.last_eval()->metrics.confusion() == b.last_eval()->metrics.confusion());
  REQUIRE(a.last_eval()->samples.size() == b.last_eval()->samples.size());
  for (size_t i = 0; i < a.last_eval()->samples.size(); ++i) {
    CHECK(a.last_eval()->samples[i].index == b.last_eval()->samples[i].index);
    CHECK(a.last_eval()->samples[i].prob == b.last_eval()->samples[i].prob);
  }
}
}  // namespace

TEST_CASE("feature cache, deterministic transforms: cached == uncached bit for bit; epochs 2+ read no image") {
  test::TempDir dir("fcache_exact");
  test::make_shapes(dir.path, 8, 2, kSize);
  Run plain(dir.path, kDeterministic);
  finetune::Trainer t_plain(*plain.model, *plain.train, plain.val.get(), 4, frozen_config(3, 0));
  CHECK(t_plain.feature_cache_note() == "feature cache: off (--feature-cache 0)");
  t_plain.fit();

  Run cached(dir.path, kDeterministic);
  finetune::Trainer t(*cached.model, *cached.train, cached.val.get(), 4, frozen_config(3, -1));
  CHECK(is_on(t));
  CHECK(t.feature_cache_note().find("deterministic train transforms") != std::string::npos);
  t.run_epoch();
  REQUIRE(t.feature_cache());
  CHECK(t.feature_cache()->complete(0));
  CHECK(t.feature_cache()->bytes() == 32 * size_t(cached.model->feature_dim()) * sizeof(float));
  // The same run without the cache, one epoch in: after the junk, it cannot go on.
  Run uncached(dir.path, kDeterministic);
  finetune::Trainer t_uncached(*uncached.model, *uncached.train, uncached.val.get(), 4, frozen_config(3, 0));
  t_uncached.run_epoch();
  spoil_images(dir.path);
  spoil_images(dir.path, "val");  // validation runs fc on the kept features too
  CHECK(t.val_features()->complete);
  CHECK_THROWS_WITH(t_uncached.run_epoch(), doctest::Contains("decode"));
  t.fit();
  check_same_run(t_plain, t);
  check_same_state(*plain.model, *cached.model);
}

TEST_CASE("feature cache, 2 views of random transforms == uncached with the loader's augmentations cycling every 2 epochs") {
  test::TempDir dir("fcache_views");
  test::make_shapes(dir.path, 8, 2, kSize);
  Run ref(dir.path, kRandom, /*period=*/2);
  finetune::Trainer t_ref(*ref.model, *ref.train, ref.val.get(), 4, frozen_config(4, 0));
  t_ref.fit();

  Run cached(dir.path, kRandom);
  finetune::Trainer t(*cached.model, *cached.train, cached.val.get(), 4, frozen_config(4, 2));
  CHECK(is_on(t));
  CHECK(t.feature_cache_note().find("2 cached augmented views per image") != std::string::npos);
  CHECK(cached.train->options().augment_period == 2);
  t.run_epoch();
  CHECK(t.feature_cache()->complete(0));
  CHECK(!t.feature_cache()->complete(1));
  t.run_epoch();
  CHECK(t.feature_cache()->complete(1));
  spoil_images(dir.path);  // epochs 3 and 4 read views 0 and 1
  t.fit();
  check_same_run(t_ref, t);
  check_same_state(*ref.model, *cached.model);

  // The views differ: a fresh-every-epoch run (period 0) gives other losses from epoch 2 on.
  test::make_shapes(dir.path, 8, 2, kSize);
  Run fresh(dir.path, kRandom);
  finetune::Trainer t_fresh(*fresh.model, *fresh.train, fresh.val.get(), 4, frozen_config(2, 0));
  t_fresh.fit();
  const auto a = losses(t_fresh), b = losses(t);
  CHECK(std::equal(a.begin(), a.begin() + 6, b.begin()));  // epoch 1: the same augmentations
  CHECK(!std::equal(a.begin() + 6, a.end(), b.begin() + 6));
}

TEST_CASE("feature cache: the unfreeze phase drops it; training after the unfreeze equals the uncached run") {
  test::TempDir dir("fcache_unfreeze");
  test::make_shapes(dir.path, 8, 2, kSize);
  auto cfg = [](int64_t fc) {
    auto c = frozen_config(4, fc);
    c.unfreeze_at = 2;
    c.unfreeze_lr = 0.01;
    return c;
  };
  Run plain(dir.path, kDeterministic);
  finetune::Trainer t_plain(*plain.model, *plain.train, plain.val.get(), 4, cfg(0));
  t_plain.fit();
  Run cached(dir.path, kDeterministic);
  finetune::Trainer t(*cached.model, *cached.train, cached.val.get(), 4, cfg(-1));
  CHECK(is_on(t));
  std::vector<std::string> log;
  finetune::Hooks hooks;
  hooks.log = [&](const std::string& s) { log.push_back(s); };
  t.run_epoch(hooks);
  t.run_epoch(hooks);  // from the cache
  CHECK(t.feature_cache());
  t.run_epoch(hooks);  // unfrozen
  CHECK(!t.feature_cache());
  REQUIRE(log.size() == 1);
  CHECK(log[0].find("feature cache dropped") != std::string::npos);
  t.fit(hooks);
  check_same_run(t_plain, t);
  check_same_state(*plain.model, *cached.model);
}

TEST_CASE("feature cache: checkpoint + resume (the cache refilled, never saved) == uninterrupted") {
  test::TempDir dir("fcache_resume");
  test::make_shapes(dir.path, 8, 2, kSize);
  for (auto [transforms, views, k] : {std::tuple{kDeterministic, int64_t(-1), int64_t(2)}, std::tuple{kRandom, int64_t(2), int64_t(3)}}) {
    CAPTURE(transforms);
    const auto cfg = frozen_config(4, views);
    Run full(dir.path, transforms);
    finetune::Trainer t_full(*full.model, *full.train, full.val.get(), 4, cfg);
    t_full.fit();
    io::Checkpoint ck;
    {
      Run first(dir.path, transforms);
      finetune::Trainer t(*first.model, *first.train, first.val.get(), 4, cfg);
      while (t.epoch() < k) t.run_epoch();
      ck = t.checkpoint();
    }
    for (const auto& [name, tensor] : ck.tensors) CHECK(name.find("feature") == std::string::npos);
    Run second(dir.path, transforms);
    finetune::Trainer t2(*second.model, *second.train, second.val.get(), 4, cfg);
    t2.restore(ck);
    t2.fit();
    check_same_run(t_full, t2);
    check_same_state(*full.model, *second.model);
  }
}

TEST_CASE("feature cache: off, with the reason, where it does not apply; an explicit N there is refused") {
  test::TempDir dir("fcache_off");
  test::make_shapes(dir.path, 2, 1, kSize);
  auto note = [&](const char* transforms, const std::function<void(finetune::TrainConfig&)>& edit) {
    Run r(dir.path, transforms);
    auto cfg = frozen_config(3, -1);
    edit(cfg);
    finetune::Trainer t(*r.model, *r.train, r.val.get(), 4, cfg);
    CHECK(!t.feature_cache());
    return t.feature_cache_note();
  };
  CHECK(note(kRandom, [](auto&) {}).find("the train transforms are random; --feature-cache N") != std::string::npos);
  CHECK(note(kDeterministic, [](auto& c) { c.frozen_bn = finetune::FrozenBN::train; }).find("--frozen-bn train") !=
        std::string::npos);
  CHECK(note(kDeterministic, [](auto& c) { c.freeze = finetune::parse_freeze("until=layer3"); })
            .find("layers below fc train: layer4.0.conv1.weight with --freeze until=layer3") != std::string::npos);
  CHECK(note(kDeterministic, [](auto& c) { c.freeze = {}; }).find("layers below fc train") != std::string::npos);
  CHECK(note(kDeterministic, [](auto& c) { c.unfreeze_at = 1; }).find("--unfreeze-at 1 comes before") != std::string::npos);
  CHECK(note(kDeterministic, [](auto& c) { c.feature_cache = 0; }) == "feature cache: off (--feature-cache 0)");
  // Everything below fc frozen by prefixes counts too.
  {
    Run r(dir.path, kDeterministic);
    auto cfg = frozen_config(2, -1);
    cfg.freeze = finetune::parse_freeze("conv1,bn1,layer1,layer2,layer3,layer4");
    CHECK(is_on(finetune::Trainer(*r.model, *r.train, r.val.get(), 4, cfg)));
  }
  // Explicit N: a usage error naming the flag.
  auto cfg = frozen_config(3, 2);
  cfg.frozen_bn = finetune::FrozenBN::train;
  CHECK_THROWS_WITH_AS(cfg.validate(), doctest::Contains("--feature-cache 2 needs --frozen-bn eval"), InvalidArgument);
  cfg = frozen_config(3, 2);
  cfg.freeze = {};
  CHECK_THROWS_WITH_AS(cfg.validate(), doctest::Contains("--feature-cache 2 needs a frozen backbone"), InvalidArgument);
  cfg = frozen_config(3, -2);
  CHECK_THROWS_WITH_AS(cfg.validate(), doctest::Contains("--feature-cache -2"), InvalidArgument);
  cfg = frozen_config(3, 2);
  cfg.freeze = finetune::parse_freeze("until=layer3");
  Run r(dir.path, kRandom);
  CHECK_THROWS_WITH_AS(finetune::Trainer(*r.model, *r.train, r.val.get(), 4, cfg), doctest::Contains("--feature-cache 2: layers below fc train"),
                       InvalidArgument);
}

TEST_CASE("feature cache over its memory budget: automatic mode turns off naming the flag, an explicit N is refused") {
  test::TempDir dir("fcache_budget");
  test::make_shapes(dir.path, 2, 1, kSize);  // 8 train + 4 val images of 32 features (width 4)
  Run r(dir.path, kRandom);
  for (auto& [name, t] : r.model->named_parameters()) t->set_requires_grad(name.rfind("fc.", 0) == 0);
  const size_t row = 32 * sizeof(float);
  auto cfg = frozen_config(3, 2);
  // 2 views x 8 + 4 validation rows fit in exactly that many bytes, not in one byte less.
  CHECK(finetune::plan_feature_cache(cfg, *r.model, *r.train, 4, 20 * row).views == 2);
  CHECK(finetune::plan_feature_cache(cfg, *r.model, *r.train, 4, 20 * row).bytes == 20 * row);
  CHECK_THROWS_WITH_AS(finetune::plan_feature_cache(cfg, *r.model, *r.train, 4, 20 * row - 1),
                       doctest::Contains("over the budget"), InvalidArgument);
  Run d(dir.path, kDeterministic);
  for (auto& [name, t] : d.model->named_parameters()) t->set_requires_grad(name.rfind("fc.", 0) == 0);
  const auto p = finetune::plan_feature_cache(frozen_config(3, -1), *d.model, *d.train, 4, 12 * row - 1);
  CHECK(p.views == 0);
  CHECK(p.note.find("over the budget") != std::string::npos);
  CHECK(p.note.find("--feature-cache 0") != std::string::npos);
  CHECK(finetune::plan_feature_cache(frozen_config(3, -1), *d.model, *d.train, 4, 12 * row).views == 1);
}

TEST_CASE("loader augment_period: epoch e makes the samples of epoch e mod N, in epoch e's own order") {
  test::TempDir dir("fcache_period");
  test::make_shapes(dir.path, 4, 1, kSize);
  const io::Dataset ds = io::image_folder(dir.path / "train");
  io::LoaderOptions lo;
  lo.seed = 3;
  lo.threads = 1;
  lo.augment_period = 2;
  io::Loader cyc(ds, io::parse_pipeline(kRandom), lo);
  lo.augment_period = 0;
  io::Loader plain(ds, io::parse_pipeline(kRandom), lo);
  CHECK(cyc.epoch_order(2) != cyc.epoch_order(0));
  CHECK(cyc.epoch_order(2) == plain.epoch_order(2));
  bool differs = false;
  for (size_t i = 0; i < ds.samples.size(); ++i) {
    CHECK(cyc.load_sample(i, 2).pixels == plain.load_sample(i, 0).pixels);
    CHECK(cyc.load_sample(i, 3).pixels == plain.load_sample(i, 1).pixels);
    differs = differs || plain.load_sample(i, 2).pixels != plain.load_sample(i, 0).pixels;
  }
  CHECK(differs);  // the random transforms do draw differently per epoch
  CHECK(io::parse_pipeline(kDeterministic).deterministic());
  CHECK(!io::parse_pipeline(kRandom).deterministic());
  CHECK(!io::parse_pipeline("resize=36,center_crop=32,hflip").deterministic());
}

TEST_CASE("feature cache: a cached step's inputs come from two buffer sets sized once, alternating") {
  finetune::FeatureCache cache(1, 5, 3);
  Tensor rows = from_vector(std::vector<double>{0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42}, {5, 3});
  for (size_t i = 0; i < 5; ++i) cache.store(0, i, rows, int64_t(i), int64_t(100 + i));
  finetune::CachedBatches batches(2, Device::cpu());
  std::vector<int64_t> labels;
  const size_t a[] = {4, 1}, b[] = {0, 3}, c[] = {2};
  auto first = batches.load(cache, 0, a, labels);
  CHECK(first.features.to_vector<float>() == std::vector<float>{40, 41, 42, 10, 11, 12});
  CHECK(first.labels.to_vector<int64_t>() == std::vector<int64_t>{104, 101});
  CHECK(labels == std::vector<int64_t>{104, 101});
  const void* set0 = first.features.raw_data();
  auto second = batches.load(cache, 0, b, labels);
  CHECK(second.features.raw_data() != set0);
  auto third = batches.load(cache, 0, c, labels);  // a short last batch: the first rows of set 0 again
  CHECK(third.features.raw_data() == set0);
  CHECK(third.features.to_vector<float>() == std::vector<float>{20, 21, 22});
  CHECK(third.labels.to_vector<int64_t>() == std::vector<int64_t>{102});
}
