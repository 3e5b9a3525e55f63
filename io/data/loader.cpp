// Multithreaded batch loader (see loader.h). Workers take (slot, position) tasks from one queue; a
// task's output depends only on (seed, epoch, dataset index), so thread count and scheduling cannot
// change a batch.
#include "io/data/loader.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <variant>

#include <fmt/format.h>

#include "engine/error.h"
#include "io/image/decode.h"
#include "io/image/file_read.h"

namespace rtune::io {

Loader::Loader(const Dataset& data, Pipeline pipeline, LoaderOptions opt)
    : data_(data), pipeline_(std::move(pipeline)), opt_(opt) {
  RTUNE_CHECK(opt_.batch_size > 0, "Loader: batch_size must be > 0, got {}", opt_.batch_size);
  RTUNE_CHECK(!data_.samples.empty(), "Loader: dataset {} has no samples", data_.root.string());
  auto size = pipeline_.batch_size();
  RTUNE_CHECK(size.has_value(), "Loader: transform pipeline '{}' does not give every sample one size; end it with a "
              "crop or a resize=HxW", pipeline_.describe());
  std::tie(out_h_, out_w_) = *size;
  square_inputs_only_ = !pipeline_.output_size();
  RTUNE_CHECK(opt_.prefetch >= 1, "Loader: prefetch must be >= 1, got {}", opt_.prefetch);
  RTUNE_CHECK(opt_.shard_count >= 1 && opt_.shard_rank < opt_.shard_count, "Loader: shard {} of {} does not exist",
              opt_.shard_rank, opt_.shard_count);
  slots_.resize(size_t(opt_.prefetch));
  plan_ = io::cache_plan(pipeline_, opt_.dct_scaling);
  const auto& ts = pipeline_.transforms;
  size_t first = plan_.prefix;
  if (first < ts.size() && std::holds_alternative<RandomResizedCrop>(ts[first]))
    rrc_ = &std::get<RandomResizedCrop>(ts[first++]);
  auto is_flip = [](const Transform& t) {
    return std::holds_alternative<RandomHorizontalFlip>(t) || std::holds_alternative<RandomVerticalFlip>(t);
  };
  if (std::all_of(ts.begin() + ptrdiff_t(first), ts.end(), is_flip)) flips_at_ = first;
  crop_only_decode_ = rrc_ && plan_.prefix == 0 && !plan_.hint.any();
  if (opt_.cache_bytes > 0) cache_ = std::make_unique<DecodedCache>(data_.samples.size(), opt_.cache_bytes);
  int n = opt_.threads > 0 ? opt_.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  RTUNE_CHECK(opt_.read_ahead >= 0, "Loader: read_ahead must be >= 0, got {}", opt_.read_ahead);
  read_ahead_samples_ = size_t(opt_.read_ahead) * size_t(n);
  // A constructor that throws runs no destructor: the workers started so far must be stopped here,
  // or their std::thread objects would end the process (std::terminate) instead of the error.
  try {
    for (int i = 0; i < n; ++i) workers_.emplace_back([this] { worker_loop(); });
    start_epoch(0);
  } catch (const std::system_error& e) {
    stop_workers();
    fail("Loader: cannot start {} worker threads ({}); lower --threads", n, e.what());
  } catch (...) {
    stop_workers();
    throw;
  }
}

Loader::~Loader() { stop_workers(); }

void Loader::stop_workers() noexcept {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  workers_.clear();
}

size_t Loader::samples_per_epoch() const {
  const size_t n = data_.samples.size(), k = opt_.shard_count, r = opt_.shard_rank;
  if (k <= 1) return n;
  return opt_.shard_pad ? (n + k - 1) / k : n / k + (r < n % k ? 1 : 0);
}

size_t Loader::batches_per_epoch() const {
  size_t n = samples_per_epoch(), b = size_t(opt_.batch_size);
  return opt_.drop_last ? n / b : (n + b - 1) / b;
}

void Loader::drain() {
  std::unique_lock<std::mutex> lk(mu_);
  done_cv_.wait(lk, [&] {
    return std::all_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.pending == 0; });
  });
  for (Slot& s : slots_) s.busy = false, s.error = nullptr, s.failed.clear();
  queue_.clear();
  queue_head_ = 0;
}

void Loader::start_epoch(uint64_t epoch) {
  // The constructor already started epoch 0: keep that work when the caller asks for it again.
  if (untouched_ && epoch == epoch_) return;
  drain();
  epoch_ = epoch;
  next_batch_ = 0;
  replaced_ = 0;
  skipped_.clear();
  order_ = epoch_order(epoch);
  // `prefetch` batches in flight: the one the caller asks for next, and those after it.
  for (size_t b = 0; b < std::min(slots_.size(), batches_per_epoch()); ++b) submit(b, int(b));
  untouched_ = true;
}

std::vector<size_t> Loader::epoch_order(uint64_t epoch) const {
  std::vector<size_t> order(data_.samples.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  if (opt_.shuffle) {
    Rng r = Rng::for_key(opt_.seed, epoch, ~uint64_t(0));
    r.shuffle(std::span<size_t>(order));
  }
  const size_t k = opt_.shard_count;
  if (k <= 1 || order.empty()) return order;
  const size_t n = order.size(), padded = opt_.shard_pad ? (n + k - 1) / k * k : n;
  std::vector<size_t> shard;
  shard.reserve(samples_per_epoch());
  for (size_t i = opt_.shard_rank; i < padded; i += k) shard.push_back(order[i % n]);
  return shard;
}

void Loader::set_augment_period(uint64_t period) {
  drain();  // batches in flight were made with the old period
  opt_.augment_period = period;
  untouched_ = false;
  next_batch_ = batches_per_epoch();  // nothing to hand out until start_epoch()
}

void Loader::submit(size_t batch_no, int slot) {
  size_t first = batch_no * size_t(opt_.batch_size);
  size_t count = std::min(size_t(opt_.batch_size), order_.size() - first);
  std::lock_guard<std::mutex> lk(mu_);
  Slot& s = slots_[size_t(slot)];
  Batch& b = s.batch;
  b.size = int64_t(count);
  b.height = out_h_;
  b.width = out_w_;
  // The caller's buffers rotate into the slots (next()): give a slot the loader's memory kind back.
  const size_t full_bytes = size_t(opt_.batch_size) * size_t(out_h_) * size_t(out_w_) * 3;
  try {
    if (b.images.get_allocator().memory != opt_.host_memory) b.images = ImageBytes(HostAllocator<uint8_t>(opt_.host_memory));
    b.images.reserve(full_bytes);  // a short batch, then full ones
    b.images.resize(count * size_t(out_h_) * size_t(out_w_) * 3);
    b.labels.resize(count);
    b.indices.resize(count);
  } catch (const std::exception& e) {  // std::bad_alloc, std::length_error, a pinned allocation's error
    fail("Loader: a batch of {} images of {}x{} pixels needs {:.1f} GiB, which cannot be allocated ({}); lower the "
         "batch size or the image size", opt_.batch_size, out_h_, out_w_, double(full_bytes) / double(1 << 30), e.what());
  }
  s.pending = count;
  s.busy = true;
  s.error = nullptr;
  s.failed.clear();
  for (size_t i = 0; i < count; ++i) queue_.push_back({slot, i, order_[first + i]});
  work_cv_.notify_all();
}

void Loader::produce(size_t index, uint64_t epoch, uint8_t* out, Scratch& scratch) const {
  if (cache_)
    if (auto hit = cache_->find(index)) return finish(index, epoch, whole(*hit), out, scratch);
  const auto& path = data_.samples[index].path;
  read_file(path, scratch.file);
  if (crop_only_decode_ && decode_crop_only(index, epoch, scratch)) {
    const ImageWindow& w = scratch.prefix.window;
    return finish(index, epoch, {w.pixels, &w.pixels, w.top, w.left, w.full_height, w.full_width}, out, scratch);
  }
  decode_prefix_into(scratch.file, path.string(), pipeline_, plan_, scratch.decoded, scratch.prefix);
  if (cache_) cache_->insert(index, scratch.decoded);  // a copy (if it fits): scratch.decoded stays this worker's
  finish(index, epoch, whole(scratch.decoded), out, scratch);
}

bool Loader::decode_crop_only(size_t index, uint64_t epoch, Scratch& scratch) const {
  auto want = [&](int height, int width) -> std::optional<CropBox> {
    if (cache_ && cache_->has_room_for(size_t(height) * size_t(width) * 3)) return std::nullopt;  // keep it whole
    Rng rng = Rng::for_key(opt_.seed, epoch, index);  // the draw finish() makes again
    return random_resized_crop_params(height, width, rng, rrc_->scale, rrc_->ratio);
  };
  if (!decode_jpeg_region(scratch.file, data_.samples[index].path.string(), want, scratch.prefix.window)) return false;
  partial_decodes_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

namespace {

// In-place twins of hflip/vflip (PIL transpose) on a packed HWC buffer; `row` is scratch.
void hflip_inplace(uint8_t* p, int h, int w, std::vector<uint8_t>& row) {
  const size_t rb = size_t(w) * 3;
  row.resize(rb);
  for (int y = 0; y < h; ++y) {
    std::memcpy(row.data(), p + size_t(y) * rb, rb);
    reverse_pixels(row.data(), w, p + size_t(y) * rb);
  }
}

void vflip_inplace(uint8_t* p, int h, int w) {
  const size_t rb = size_t(w) * 3;
  for (int a = 0, b = h - 1; a < b; ++a, --b) std::swap_ranges(p + size_t(a) * rb, p + size_t(a + 1) * rb, p + size_t(b) * rb);
}

}  // namespace

void Loader::wrong_size(size_t index, int height, int width) const {
  const std::string path = data_.samples[index].path.string();
  if (square_inputs_only_)  // not a bad file: the pipeline cannot batch this dataset, so no sample may stand in
    throw NonSquareInput(fmt::format(
        "{}: resize={} gives {}x{} for this non-square image, but a batch needs one size ({}x{}, what square images "
        "give); add center_crop={} after it, or use resize={}x{}", path, out_h_, height, width, out_h_, out_w_, out_h_,
        out_h_, out_w_));
  fail("Loader: sample {} came out {}x{}, expected {}x{}", path, height, width, out_h_, out_w_);
}

void Loader::finish(size_t index, uint64_t epoch, const Source& source, uint8_t* out, Scratch& scratch) const {
  Rng rng = Rng::for_key(opt_.seed, epoch, index);
  const auto& ts = pipeline_.transforms;
  const ImageView src = source.pixels;
  const bool fast = flips_at_ != SIZE_MAX;  // only flips after the prefix (and the crop): done in place in `out`
  const Image* cur = source.owner;
  Image tmp;
  size_t next = plan_.prefix;  // the first transform not yet applied
  if (rrc_) {
    // Same draws, in the same order, as apply(): the crop box first. The source may be a window of
    // the image holding only the box (decode_crop_only).
    const int full_h = source.full_height, full_w = source.full_width, h = rrc_->height, w = rrc_->width;
    RTUNE_CHECK(full_h > 0 && full_w > 0, "{}: empty input image", describe(*rrc_));
    CropBox b = random_resized_crop_params(full_h, full_w, rng, rrc_->scale, rrc_->ratio);
    // The largest intermediate any crop of this image can need, so the buffer stops growing early.
    scratch.prefix.resize.reserve(size_t(std::max(full_h * w, h * full_w)) * 3);
    if (!fast) tmp = Image(h, w), cur = &tmp;
    resize_into(src, source.top, source.left, b, h, w, {0, 0, h, w}, rrc_->interp, fast ? out : tmp.pixels.data(),
                scratch.prefix.resize);
    ++next;
  } else if (fast) {
    if (src.height != out_h_ || src.width != out_w_) wrong_size(index, src.height, src.width);
    std::memcpy(out, src.data, src.bytes());
  }
  if (fast) {
    for (size_t i = flips_at_; i < ts.size(); ++i) {
      if (auto* hf = std::get_if<RandomHorizontalFlip>(&ts[i])) {
        if (rng.bernoulli(hf->p)) hflip_inplace(out, out_h_, out_w_, scratch.row);
      } else if (rng.bernoulli(std::get<RandomVerticalFlip>(ts[i]).p)) {
        vflip_inplace(out, out_h_, out_w_);
      }
    }
    return;
  }
  if (!cur) tmp = src.copy(), cur = &tmp;  // a cached image, for transforms that take an Image
  for (size_t i = next; i < ts.size(); ++i) {
    tmp = apply(ts[i], *cur, rng);
    cur = &tmp;
  }
  if (cur->height != out_h_ || cur->width != out_w_) wrong_size(index, cur->height, cur->width);
  std::memcpy(out, cur->pixels.data(), cur->pixels.size());
}

Image Loader::load_sample(size_t index, uint64_t epoch) const {
  Scratch scratch;
  Image out(out_h_, out_w_);
  produce(index, augment_epoch(epoch), out.pixels.data(), scratch);
  return out;
}

void Loader::run_task(const Task& t, Scratch& scratch) {
  Slot& s = slots_[size_t(t.slot)];
  const size_t sample_bytes = size_t(out_h_) * size_t(out_w_) * 3;
  uint8_t* out = s.batch.images.data() + t.position * sample_bytes;
  size_t index = t.index;
  // A sample that cannot be decoded (or transformed) is replaced by the next dataset index
  // (deterministically), or is an error when strict; at most one full pass over the dataset is tried.
  for (size_t attempt = 0;; ++attempt) {
    try {
      produce(index, augment_epoch(epoch_), out, scratch);
      break;
    } catch (const NonSquareInput&) {
      throw;
    } catch (const Error& e) {
      if (opt_.strict) throw;
      if (opt_.skip_bad) {
        std::fprintf(stderr, "warning: loader: %s; skipped\n", e.what());
        std::lock_guard<std::mutex> lk(mu_);
        s.failed.push_back({t.position, {index, e.what()}});
        return;
      }
      if (attempt + 1 >= data_.samples.size()) throw;
      std::fprintf(stderr, "warning: loader: %s; using sample %zu instead\n", e.what(),
                   (index + 1) % data_.samples.size());
      std::lock_guard<std::mutex> lk(mu_);
      ++replaced_;
    }
    index = (index + 1) % data_.samples.size();
  }
  s.batch.labels[t.position] = data_.samples[index].label;
  s.batch.indices[t.position] = int64_t(index);
}

void Loader::worker_loop() {
  Scratch scratch;
  std::unique_lock<std::mutex> lk(mu_);
  while (true) {
    work_cv_.wait(lk, [&] { return stop_ || queue_head_ < queue_.size(); });
    if (stop_) return;
    Task t = queue_[queue_head_];
    // The sample read_ahead per worker behind this one: its file is named to the OS now.
    const size_t ahead = queue_head_ + read_ahead_samples_;
    const size_t soon = read_ahead_samples_ > 0 && ahead < queue_.size() ? queue_[ahead].index : SIZE_MAX;
    if (++queue_head_ == queue_.size()) queue_.clear(), queue_head_ = 0;
    lk.unlock();
    if (soon != SIZE_MAX && !(cache_ && cache_->contains(soon))) advise_will_read(data_.samples[soon].path);
    std::exception_ptr err;
    try {
      run_task(t, scratch);
    } catch (...) {
      err = std::current_exception();
    }
    lk.lock();
    Slot& s = slots_[size_t(t.slot)];
    if (err && !s.error) s.error = err;
    if (--s.pending == 0) done_cv_.notify_all();
  }
}

bool Loader::next(Batch& out) {
  // A batch whose every sample was skipped (skip_bad) is passed over: the caller gets the next one.
  while (next_batch_ < batches_per_epoch()) {
    int slot = int(next_batch_ % slots_.size());
    std::vector<std::pair<size_t, SkippedSample>> failed;
    {
      std::unique_lock<std::mutex> lk(mu_);
      Slot& s = slots_[size_t(slot)];
      untouched_ = false;
      done_cv_.wait(lk, [&] { return s.pending == 0; });
      if (s.error) {
        std::exception_ptr e = s.error;
        lk.unlock();
        drain();
        std::rethrow_exception(e);
      }
      s.busy = false;
      failed.swap(s.failed);
    }
    std::swap(out, slots_[size_t(slot)].batch);  // the caller's old buffers are reused by a later batch
    size_t refill = next_batch_ + slots_.size();  // the batch this slot holds next
    ++next_batch_;
    if (refill < batches_per_epoch()) submit(refill, slot);
    if (!failed.empty()) drop_failed(out, failed);
    if (out.size > 0) return true;
  }
  return false;
}

void Loader::drop_failed(Batch& out, std::vector<std::pair<size_t, SkippedSample>>& failed) {
  std::sort(failed.begin(), failed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  const size_t sample_bytes = size_t(out_h_) * size_t(out_w_) * 3;
  size_t kept = 0, f = 0;
  for (size_t i = 0; i < size_t(out.size); ++i) {
    if (f < failed.size() && failed[f].first == i) {
      ++f;
      continue;
    }
    if (kept != i) {
      std::memmove(out.images.data() + kept * sample_bytes, out.images.data() + i * sample_bytes, sample_bytes);
      out.labels[kept] = out.labels[i];
      out.indices[kept] = out.indices[i];
    }
    ++kept;
  }
  out.size = int64_t(kept);
  out.images.resize(kept * sample_bytes);
  out.labels.resize(kept);
  out.indices.resize(kept);
  for (auto& [position, sample] : failed) skipped_.push_back(std::move(sample));
}

}  // namespace rtune::io
