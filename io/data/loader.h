// A multithreaded loader: decode + transform samples of a Dataset into uint8 NHWC batches and int64
// labels (normalisation is left to the consumer, e.g. on the GPU). Like torch's DataLoader with a
// seeded generator, but deterministic for a seed whatever the thread count: the epoch order comes from
// Rng::for_key(seed, epoch, ~0) and each sample's transforms from Rng::for_key(seed, epoch, index).
// Two batches are in flight while the caller holds the previous one; buffers are reused.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "io/data/dataset.h"
#include "io/transforms/pipeline.h"

namespace rtune::io {

struct LoaderOptions {
  int batch_size = 32;
  int threads = 0;          // decode/transform workers; 0: hardware concurrency
  bool shuffle = true;
  bool drop_last = false;
  uint64_t seed = 0;
  bool strict = false;      // a sample that fails to decode is an error (else replaced, with a warning)
  bool dct_scaling = false; // let JPEG decode shrink by 1/2..1/8 down to the pipeline's decode_hint()
};

struct Batch {
  int64_t size = 0;             // samples in this batch (the last one may be short)
  int height = 0, width = 0;
  std::vector<uint8_t> images;  // size x height x width x 3
  std::vector<int64_t> labels;  // size
  std::vector<int64_t> indices; // dataset index of each sample
};

class Loader {
 public:
  // requires: pipeline.output_size() is set (every sample must have one shape).
  Loader(const Dataset& data, Pipeline pipeline, LoaderOptions opt);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Starts (or restarts) an epoch; its order and augmentations depend only on (seed, epoch).
  void start_epoch(uint64_t epoch);
  // Fills `out` with the next batch, reusing its buffers; false when the epoch is done.
  bool next(Batch& out);
  size_t batches_per_epoch() const;
  size_t replaced_samples() const { return replaced_; }  // failed decodes replaced this epoch
  // The sample the loader makes for dataset index `i` in `epoch` (what a batch holds for it).
  Image load_sample(size_t index, uint64_t epoch) const;

 private:
  struct Slot {
    Batch batch;
    size_t pending = 0;  // samples not yet written
    bool busy = false;   // submitted and not yet handed out
    std::exception_ptr error;
  };
  struct Task {
    int slot;
    size_t position;  // index into the batch
    size_t index;     // dataset index
  };
  void submit(size_t batch_no, int slot);
  void run_task(const Task& t);
  void worker_loop();
  void drain();

  const Dataset& data_;
  Pipeline pipeline_;
  LoaderOptions opt_;
  int out_h_ = 0, out_w_ = 0;
  std::vector<size_t> order_;
  uint64_t epoch_ = 0;
  size_t next_batch_ = 0;
  size_t replaced_ = 0;

  // Slot b % 2 holds batch b: the next batch is decoded while the caller uses the current one.
  Slot slots_[2];
  std::vector<Task> queue_;
  size_t queue_head_ = 0;
  bool stop_ = false;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::vector<std::thread> workers_;
};

}  // namespace rtune::io
