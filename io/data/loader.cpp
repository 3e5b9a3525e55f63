// Multithreaded batch loader (see loader.h). Workers take (slot, position) tasks from one queue; a
// task's output depends only on (seed, epoch, dataset index), so thread count and scheduling cannot
// change a batch.
#include "io/data/loader.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "engine/error.h"
#include "io/image/decode.h"

namespace rtune::io {

Loader::Loader(const Dataset& data, Pipeline pipeline, LoaderOptions opt)
    : data_(data), pipeline_(std::move(pipeline)), opt_(opt) {
  RTUNE_CHECK(opt_.batch_size > 0, "Loader: batch_size must be > 0, got {}", opt_.batch_size);
  RTUNE_CHECK(!data_.samples.empty(), "Loader: dataset {} has no samples", data_.root.string());
  auto size = pipeline_.output_size();
  RTUNE_CHECK(size.has_value(), "Loader: transform pipeline '{}' does not give every sample one size; end it with a "
              "crop or a resize=HxW", pipeline_.describe());
  std::tie(out_h_, out_w_) = *size;
  int n = opt_.threads > 0 ? opt_.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < n; ++i) workers_.emplace_back([this] { worker_loop(); });
  start_epoch(0);
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

size_t Loader::batches_per_epoch() const {
  size_t n = data_.samples.size(), b = size_t(opt_.batch_size);
  return opt_.drop_last ? n / b : (n + b - 1) / b;
}

void Loader::drain() {
  std::unique_lock<std::mutex> lk(mu_);
  done_cv_.wait(lk, [&] { return slots_[0].pending == 0 && slots_[1].pending == 0; });
  for (Slot& s : slots_) s.busy = false, s.error = nullptr;
  queue_.clear();
  queue_head_ = 0;
}

void Loader::start_epoch(uint64_t epoch) {
  drain();
  epoch_ = epoch;
  next_batch_ = 0;
  replaced_ = 0;
  order_.resize(data_.samples.size());
  for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
  if (opt_.shuffle) {
    Rng r = Rng::for_key(opt_.seed, epoch, ~uint64_t(0));
    r.shuffle(std::span<size_t>(order_));
  }
  // Two batches in flight: the one the caller asks for next, and the one after it.
  for (size_t b = 0; b < std::min<size_t>(2, batches_per_epoch()); ++b) submit(b, int(b));
}

void Loader::submit(size_t batch_no, int slot) {
  size_t first = batch_no * size_t(opt_.batch_size);
  size_t count = std::min(size_t(opt_.batch_size), order_.size() - first);
  std::lock_guard<std::mutex> lk(mu_);
  Slot& s = slots_[slot];
  Batch& b = s.batch;
  b.size = int64_t(count);
  b.height = out_h_;
  b.width = out_w_;
  b.images.resize(count * size_t(out_h_) * size_t(out_w_) * 3);
  b.labels.resize(count);
  b.indices.resize(count);
  s.pending = count;
  s.busy = true;
  s.error = nullptr;
  for (size_t i = 0; i < count; ++i) queue_.push_back({slot, i, order_[first + i]});
  work_cv_.notify_all();
}

Image Loader::load_sample(size_t index, uint64_t epoch) const {
  const Sample& s = data_.samples[index];
  Image img = decode_image(s.path, opt_.dct_scaling ? pipeline_.decode_hint() : DecodeHint{});
  Rng rng = Rng::for_key(opt_.seed, epoch, index);
  return pipeline_.apply(img, rng);
}

void Loader::run_task(const Task& t) {
  Slot& s = slots_[t.slot];
  size_t index = t.index;
  Image img;
  // A sample that cannot be decoded is replaced by the next dataset index (deterministically), or is
  // an error when strict; at most one full pass over the dataset is tried.
  for (size_t attempt = 0;; ++attempt) {
    try {
      img = load_sample(index, epoch_);
      break;
    } catch (const Error& e) {
      if (opt_.strict || attempt + 1 >= data_.samples.size()) throw;
      std::fprintf(stderr, "warning: loader: %s; using sample %zu instead\n", e.what(),
                   (index + 1) % data_.samples.size());
      std::lock_guard<std::mutex> lk(mu_);
      ++replaced_;
    }
    index = (index + 1) % data_.samples.size();
  }
  if (img.height != out_h_ || img.width != out_w_)
    fail("Loader: sample {} came out {}x{}, expected {}x{}", data_.samples[index].path.string(), img.height, img.width,
         out_h_, out_w_);
  std::memcpy(s.batch.images.data() + t.position * img.pixels.size(), img.pixels.data(), img.pixels.size());
  s.batch.labels[t.position] = data_.samples[index].label;
  s.batch.indices[t.position] = int64_t(index);
}

void Loader::worker_loop() {
  std::unique_lock<std::mutex> lk(mu_);
  while (true) {
    work_cv_.wait(lk, [&] { return stop_ || queue_head_ < queue_.size(); });
    if (stop_) return;
    Task t = queue_[queue_head_++];
    if (queue_head_ == queue_.size()) queue_.clear(), queue_head_ = 0;
    lk.unlock();
    std::exception_ptr err;
    try {
      run_task(t);
    } catch (...) {
      err = std::current_exception();
    }
    lk.lock();
    Slot& s = slots_[t.slot];
    if (err && !s.error) s.error = err;
    if (--s.pending == 0) done_cv_.notify_all();
  }
}

bool Loader::next(Batch& out) {
  if (next_batch_ >= batches_per_epoch()) return false;
  int slot = int(next_batch_ % 2);
  {
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return slots_[slot].pending == 0; });
    if (slots_[slot].error) {
      std::exception_ptr e = slots_[slot].error;
      lk.unlock();
      drain();
      std::rethrow_exception(e);
    }
    slots_[slot].busy = false;
  }
  std::swap(out, slots_[slot].batch);  // the caller's old buffers are reused by a later batch
  ++next_batch_;
  if (next_batch_ + 1 < batches_per_epoch()) submit(next_batch_ + 1, slot);
  return true;
}

}  // namespace rtune::io
