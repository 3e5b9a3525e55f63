// A multithreaded loader: decode + transform samples of a Dataset into uint8 NHWC batches and int64
// labels (normalisation is left to the consumer, e.g. on the GPU). Like torch's DataLoader with a
// seeded generator, but deterministic for a seed whatever the thread count: the epoch order comes from
// Rng::for_key(seed, epoch, ~0) and each sample's transforms from Rng::for_key(seed, epoch, index).
// `prefetch` batches are in flight while the caller holds the previous one; the caller's batch and
// the slots rotate, so in steady state no batch buffer is allocated. With `cache_bytes` > 0 a
// DecodedCache (cache.h) keeps decoded images across epochs; cached and uncached batches are identical.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <thread>
#include <vector>

#include "engine/error.h"
#include "io/data/cache.h"
#include "io/data/dataset.h"
#include "io/data/host_memory.h"
#include "io/transforms/pipeline.h"

namespace rtune::io {

struct LoaderOptions {
  int batch_size = 32;
  int threads = 0;          // decode/transform workers; 0: hardware concurrency
  bool shuffle = true;
  bool drop_last = false;
  uint64_t seed = 0;
  bool strict = false;      // a sample that fails to decode is an error (else replaced, with a warning)
  // Not strict: a sample that fails to decode is left out of its batch (which comes out shorter)
  // instead of replaced by the next one. Evaluation needs this: a substitute would count another
  // image, under its label, a second time.
  bool skip_bad = false;
  bool dct_scaling = false; // let JPEG decode shrink by 1/2..1/8 (see cache_plan() for the bounds)
  int prefetch = 2;         // batches decoded ahead of the caller (>= 1)
  // Files named to the OS (advise_will_read) this many samples per worker ahead of the workers, so
  // that a file not in the page cache is read while earlier samples are decoded; 0: off.
  int read_ahead = 8;
  size_t cache_bytes = 0;   // decoded-image cache budget; 0: no cache
  // > 0: the random transforms of epoch e are those of epoch e % augment_period (the shuffle still
  // changes every epoch): the images a frozen-feature cache of that many views holds; 0: fresh each epoch.
  uint64_t augment_period = 0;
  // A data-parallel rank's part of every epoch, as PyTorch's DistributedSampler makes it: the epoch's
  // order, padded with its first entries to a multiple of shard_count, then every shard_count-th entry
  // from shard_rank, so step k of N ranks x batch B sees the samples of step k of 1 rank x batch N*B.
  // shard_pad false (validation): no padding, no image counted twice; shards differ by one at most.
  size_t shard_rank = 0, shard_count = 1;
  bool shard_pad = true;
  const HostMemory* host_memory = nullptr;  // batch image bytes from here (e.g. pinned); nullptr: heap
};

// A sample left out of its batch (LoaderOptions::skip_bad) and why.
struct SkippedSample {
  size_t index = 0;     // dataset index
  std::string reason;   // the decode error, naming the file
};

// A sample the pipeline cannot make batch-sized: resize=S (no crop after it) on a non-square image.
// Never replaced by another sample, strict or not: it is the pipeline, not the file, that does not fit.
struct NonSquareInput : Error {
  using Error::Error;
};

struct Batch {
  int64_t size = 0;             // samples in this batch (the last one may be short)
  int height = 0, width = 0;
  ImageBytes images;            // size x height x width x 3 (HWC per sample)
  std::vector<int64_t> labels;  // size
  std::vector<int64_t> indices; // dataset index of each sample
};

class Loader {
 public:
  // requires: pipeline.batch_size() is set (every sample must have one shape; with resize=S last,
  // every input must be square).
  Loader(const Dataset& data, Pipeline pipeline, LoaderOptions opt);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Starts (or restarts) an epoch; its order and augmentations depend only on (seed, epoch). The
  // constructor starts epoch 0; start_epoch(0) before any next() keeps the batches already in flight.
  void start_epoch(uint64_t epoch);
  // Fills `out` with the next batch, reusing its buffers; false when the epoch is done.
  bool next(Batch& out);
  size_t batches_per_epoch() const;
  // The dataset indices of `epoch` in batch order (batch k holds entries [k*batch, (k+1)*batch)):
  // this rank's shard of the epoch.
  std::vector<size_t> epoch_order(uint64_t epoch) const;
  // Samples per epoch on this rank (its shard's length).
  size_t samples_per_epoch() const;
  // Changes LoaderOptions::augment_period; the next start_epoch() starts over with it.
  void set_augment_period(uint64_t period);
  const LoaderOptions& options() const { return opt_; }
  int threads() const { return int(workers_.size()); }  // the decode/transform workers started
  const Pipeline& pipeline() const { return pipeline_; }
  size_t replaced_samples() const { return replaced_; }  // failed decodes replaced this epoch
  // skip_bad: the samples left out so far this epoch, in the order their batches were handed out.
  const std::vector<SkippedSample>& skipped_samples() const { return skipped_; }
  // Samples whose JPEG was decoded only as far as their RandomResizedCrop box needs (since construction).
  size_t partial_decodes() const { return partial_decodes_.load(std::memory_order_relaxed); }
  // The sample the loader makes for dataset index `i` in `epoch` (what a batch holds for it).
  Image load_sample(size_t index, uint64_t epoch) const;
  const Dataset& dataset() const { return data_; }
  // The decoded cache, or nullptr when cache_bytes is 0.
  const DecodedCache* cache() const { return cache_.get(); }
  const CachePlan& cache_plan() const { return plan_; }

 private:
  struct Slot {
    Batch batch;
    size_t pending = 0;  // samples not yet written
    bool busy = false;   // submitted and not yet handed out
    std::exception_ptr error;
    std::vector<std::pair<size_t, SkippedSample>> failed;  // skip_bad: (position, sample) left out
  };
  struct Task {
    int slot;
    size_t position;  // index into the batch
    size_t index;     // dataset index
  };
  // A worker's buffers, reused from sample to sample so the steady state does not allocate for
  // file bytes, the decoded image or the resize intermediate.
  struct Scratch {
    std::vector<std::byte> file;
    Image decoded;
    PrefixScratch prefix;  // also the RandomResizedCrop path's partially decoded window and resize pass
    std::vector<uint8_t> row;  // the in-place horizontal flip's copy of a row
  };
  // What the rest of the pipeline starts from: an image, or a window of one (`pixels` holds rows and
  // columns from (top, left) of a full_height x full_width image). `owner` is the Image holding them
  // (null for a cached image), for transforms that take an Image.
  struct Source {
    ImageView pixels;
    const Image* owner = nullptr;
    int top = 0, left = 0, full_height = 0, full_width = 0;
  };
  static Source whole(const Image& img) { return {img, &img, 0, 0, img.height, img.width}; }
  static Source whole(ImageView img) { return {img, nullptr, 0, 0, img.height, img.width}; }
  void submit(size_t batch_no, int slot);
  // Moves the samples after each failed position down over it; out.size shrinks accordingly.
  void drop_failed(Batch& out, std::vector<std::pair<size_t, SkippedSample>>& failed);
  void run_task(const Task& t, Scratch& scratch);
  // The epoch whose random transforms `epoch`'s samples get (LoaderOptions::augment_period).
  uint64_t augment_epoch(uint64_t epoch) const { return opt_.augment_period > 0 ? epoch % opt_.augment_period : epoch; }
  // Makes sample `index` of `epoch` into `out` (out_h_ x out_w_ x 3 bytes): the image before the first
  // random transform comes from the cache, or is decoded (and offered to the cache), or, for a
  // RandomResizedCrop that the cache will not keep, only its crop box is decoded from the JPEG.
  void produce(size_t index, uint64_t epoch, uint8_t* out, Scratch& scratch) const;
  // Decodes only the crop box `index` draws in `epoch` into scratch.window; false when the file or
  // the situation does not allow it (see produce()).
  bool decode_crop_only(size_t index, uint64_t epoch, Scratch& scratch) const;
  // A sample that did not come out out_h_ x out_w_: an error naming it (NonSquareInput when the
  // pipeline's size depends on the input, see Pipeline::batch_size).
  [[noreturn]] void wrong_size(size_t index, int height, int width) const;
  // Runs the rest of the pipeline on `src` into `out`.
  void finish(size_t index, uint64_t epoch, const Source& src, uint8_t* out, Scratch& scratch) const;
  void worker_loop();
  void drain();
  void stop_workers() noexcept;  // asks every worker to stop and joins it

  const Dataset& data_;
  Pipeline pipeline_;
  LoaderOptions opt_;
  CachePlan plan_;
  // What follows the cached prefix: `rrc_` a RandomResizedCrop first (cropped and resized in one go,
  // from a partially decoded JPEG when crop_only_decode_), then from flips_at_ only flips (done in
  // place, the result written straight into the batch).
  const RandomResizedCrop* rrc_ = nullptr;
  size_t flips_at_ = SIZE_MAX;  // SIZE_MAX: the rest runs transform by transform (apply())
  // The RandomResizedCrop comes first (nothing cached before it, full-size decode): a JPEG that the
  // cache will not keep can be decoded only as far as the crop box needs.
  bool crop_only_decode_ = false;
  bool square_inputs_only_ = false;  // the size comes from resize=S: other inputs stop the loader
  mutable std::atomic<size_t> partial_decodes_{0};
  std::unique_ptr<DecodedCache> cache_;
  int out_h_ = 0, out_w_ = 0;
  size_t read_ahead_samples_ = 0;  // opt_.read_ahead x the worker count
  std::vector<size_t> order_;
  uint64_t epoch_ = 0;
  size_t next_batch_ = 0;
  bool untouched_ = false;  // epoch_ was started and no batch has been asked for yet
  size_t replaced_ = 0;
  std::vector<SkippedSample> skipped_;

  // Slot b % prefetch holds batch b: later batches are decoded while the caller uses the current one.
  std::vector<Slot> slots_;
  std::vector<Task> queue_;
  size_t queue_head_ = 0;
  bool stop_ = false;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::vector<std::thread> workers_;
};

}  // namespace rtune::io
