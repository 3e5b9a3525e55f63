// Helpers for the trainer tests: a throw-away synthetic ImageFolder and a tiny ResNet-18 run setup.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <unistd.h>
#include <fmt/format.h>
#include "finetune/synthetic.h"
#include "tests/core/test_util.h"
#include "finetune/trainer.h"
#include "io/data/dataset.h"
#include "io/data/loader.h"

namespace rtune::test {

// A shapes dataset with separate train/val folders under `root`.
inline void make_shapes(const std::filesystem::path& root, int train_per_class, int val_per_class, int size) {
  finetune::synth::write_image_folder(root / "train", finetune::synth::Task::shapes, train_per_class, size, 1);
  finetune::synth::write_image_folder(root / "val", finetune::synth::Task::shapes, val_per_class, size, 2);
}

// Model + data + loaders for one run; rebuilt from scratch to compare runs.
struct TinyRun {
  io::Dataset train_ds, val_ds;
  std::unique_ptr<io::Loader> train, val;
  std::unique_ptr<models::ResNet> model;
  TinyRun(const std::filesystem::path& root, int size, int width, int batch, uint64_t seed) {
    train_ds = io::image_folder(root / "train");
    val_ds = io::image_folder(root / "val");
    io::LoaderOptions lo;
    lo.batch_size = batch;
    lo.threads = 2;
    lo.seed = seed;
    train = std::make_unique<io::Loader>(train_ds, io::parse_pipeline(fmt::format("random_crop={}:pad=2,hflip", size)), lo);
    lo.shuffle = false;
    val = std::make_unique<io::Loader>(val_ds, io::parse_pipeline(fmt::format("center_crop={}", size)), lo);
    model = std::make_unique<models::ResNet>(models::ResNetConfig{"resnet18", width, train_ds.num_classes(), false, seed});
  }
};

}  // namespace rtune::test
