// The frozen-feature cache on the device (the simulated one in the sim build): the features travel to the
// host in epoch 1 and back to the device as the head's input in later epochs, under rtune train's
// channels-last fp32 autocast. A frozen backbone's forward is the same computation every epoch, so the
// cached run must equal the uncached run on the same device bit for bit, as on the CPU.
#include <doctest/doctest.h>
#include "finetune/feature_cache.h"
#include "tests/cuda/skip_without_device.h"
#include "tests/train/train_test_util.h"

using namespace rtune;

TEST_CASE("feature cache on the device: cached == uncached (per-step losses, head weights, validation)") {
  test::TempDir dir("cuda_fcache");
  test::make_shapes(dir.path, 3, 1, 32);  // 12 train, 4 val images
  const Device dev = Device::cuda(0);
  auto run = [&](int64_t feature_cache) {
    io::Dataset train_ds = io::image_folder(dir.path / "train"), val_ds = io::image_folder(dir.path / "val");
    io::LoaderOptions lo;
    lo.batch_size = 5;  // two full batches and a short one
    lo.threads = 2;
    lo.seed = 4;
    io::Loader train(train_ds, io::parse_pipeline("center_crop=32"), lo);
    lo.shuffle = false;
    io::Loader val(val_ds, io::parse_pipeline("center_crop=32"), lo);
    models::ResNet model(models::ResNetConfig{"resnet18", 4, 4, false, 2});
    model.to(dev);
    finetune::TrainConfig cfg;
    cfg.epochs = 3;
    cfg.freeze = finetune::parse_freeze("backbone");
    cfg.opt.kind = "sgd";
    cfg.opt.lr = 0.05;
    cfg.opt.momentum = 0.9;
    cfg.device = dev;
    cfg.feature_cache = feature_cache;
    finetune::Trainer t(model, train, &val, 4, cfg);
    t.fit();
    CHECK((t.feature_cache() != nullptr) == (feature_cache != 0));
    std::vector<double> out;
    for (const auto& s : t.steps()) out.push_back(s.loss);
    for (const auto& h : t.history()) out.push_back(h.val_loss);
    for (const Tensor* p : {&model.fc->weight, &model.fc->bias})
      for (double v : p->cpu().to(DType::f64).to_vector<double>()) out.push_back(v);
    return out;
  };
  const auto plain = run(0), cached = run(-1);
  REQUIRE(plain.size() == cached.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    CAPTURE(i);
    CHECK(plain[i] == cached[i]);
  }
}
