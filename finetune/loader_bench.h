// The loader benchmark behind `bench_loader` (and `rtune bench loader`): images per second over an
// image folder for (1) decode only, (2) the full training transforms through the Loader, and
// (3) with --cache, the same transforms in epoch 2 served from the decoded cache. The PyTorch
// counterpart is bench/pytorch_loader.py (same folder, transforms, batch and worker count).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace rtune::finetune {

struct LoaderBenchOptions {
  std::filesystem::path data;                 // an ImageFolder root
  int threads = 0;                            // 0: hardware concurrency
  int batch_size = 128;
  int prefetch = 2;
  int read_ahead = 8;                         // io::LoaderOptions::read_ahead
  bool decode_pass = true;                    // false: leave out the decode-only pass (which also
                                              // fills the page cache: off to time a cold one)
  std::string transforms = "imagenet-train";  // a pipeline spec (pipeline.h)
  bool cache = false;                         // also measure epoch 2 from the decoded cache
  size_t cache_bytes = 0;                     // 0: half the physical memory
  bool dct_scaling = false;
  size_t max_images = 0;                      // use only the first N samples; 0: all
  uint64_t seed = 0;
};

struct LoaderBenchResult {
  size_t images = 0;  // samples per measured pass
  int threads = 0, batch_size = 0;
  std::string pipeline;         // io::Pipeline::describe()
  double decode_img_s = 0;      // full-size decode of every file, threads workers, no transforms
  double train_img_s = 0;       // io::Loader epoch, no cache
  double cache_fill_img_s = 0;  // with --cache: epoch 1, which decodes and fills the cache
  double cached_img_s = 0;      // with --cache: epoch 2, from the cache
  // The same passes as images per CPU-second of the process (all threads): what the machine's cores
  // could deliver, less disturbed than wall time when other jobs share the machine.
  double decode_img_cpu_s = 0, train_img_cpu_s = 0, cached_img_cpu_s = 0;
  size_t cache_entries = 0, cache_bytes_used = 0;
  size_t partial_decodes = 0;  // train pass: JPEGs decoded only down to their RandomResizedCrop box
  size_t decode_skipped = 0;   // decode pass: files that did not decode (skipped with a warning each)
  size_t train_replaced = 0;   // train pass: samples replaced because their file did not decode
};

// Runs the passes in order (a pass left out reports 0); `log` (optional) gets a line per pass. Throws rtune::Error for a bad
// folder or spec.
LoaderBenchResult run_loader_bench(const LoaderBenchOptions& opt,
                                   const std::function<void(const std::string&)>& log = {});

// One line of JSON with every field of the result.
std::string to_json(const LoaderBenchResult& r);

}  // namespace rtune::finetune
