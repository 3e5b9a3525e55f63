// A RAM cache of decoded images for the loader, so that epoch 2+ skips JPEG decoding (torch's
// DataLoader has none: every epoch decodes every file again).
//
// What is stored is the image *before the first random transform*: decoded (with the DCT-scaling
// hint when the loader allows it) and passed through the pipeline's leading deterministic transforms
// (Resize, CenterCrop). Those draw no random numbers, so "cached image -> rest of the pipeline" gives
// exactly the pixels of "decode -> whole pipeline" for the same seed. For `resize=256,center_crop=224`
// the cache holds 224x224 crops; for a RandomResizedCrop-first pipeline, the decoded image.
//
// Policy: first come, first kept. An image is stored if it fits in what is left of the byte budget,
// and is never evicted. With a shuffled epoch every sample is touched once per epoch, so LRU would
// give the same hit rate (budget / dataset size) while paying for churn and locks; keeping the first
// arrivals gives that hit rate with lock-free lookups and no eviction bookkeeping.
#pragma once
#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/data/byte_arena.h"
#include "io/image/decode.h"
#include "io/transforms/pipeline.h"

namespace rtune::io {

// How a pipeline is split around the cache: decode with `hint`, run transforms [0, prefix), cache,
// then run transforms [prefix, end) with the sample's Rng.
struct CachePlan {
  DecodeHint hint;
  size_t prefix = 0;
};

// requires: nothing. ensures: transforms [0, prefix) are Resize/CenterCrop (draw no random numbers);
// hint is empty unless `dct_scaling`: then a leading Resize gives pipeline.decode_hint(), a leading
// RandomResizedCrop(h, w) asks for a short side >= max(h, w) (a full-image crop is never upsampled).
CachePlan cache_plan(const Pipeline& pipeline, bool dct_scaling);

// Decode + the plan's prefix: the image the cache stores for `path`.
Image load_prefix(const std::filesystem::path& path, const Pipeline& pipeline, const CachePlan& plan);
// Buffers decode_prefix_into reuses from call to call.
struct PrefixScratch {
  ImageWindow window;           // the decoded image, or the part of a JPEG a Resize(+CenterCrop) reads
  std::vector<uint8_t> resize;  // the resize's intermediate pass
};

// Decode + prefix of a file already read, into `out` (its pixel buffer reused); `name` for errors.
// A prefix of Resize, or Resize then a CenterCrop that fits, is one resize computing only the crop's
// pixels, from a JPEG decoded only as far as they need (decode_jpeg_region); same pixels as
// decoding everything and applying the transforms one by one.
void decode_prefix_into(std::span<const std::byte> bytes, std::string_view name, const Pipeline& pipeline,
                        const CachePlan& plan, Image& out, PrefixScratch& scratch);

// This machine's physical memory in bytes (0 when the system does not say): what cache budgets are
// held against.
size_t physical_memory_bytes();

class DecodedCache {
 public:
  // Slots for dataset indices [0, num_samples); at most budget_bytes of images (see cost()).
  DecodedCache(size_t num_samples, size_t budget_bytes);
  ~DecodedCache();
  DecodedCache(const DecodedCache&) = delete;
  DecodedCache& operator=(const DecodedCache&) = delete;

  // The stored image for `index`, or nullopt. Thread-safe, lock-free; the pixels stay valid until
  // clear() or destruction.
  std::optional<ImageView> find(size_t index) const;
  // Whether `index` is stored, without counting a lookup (the loader's read-ahead asks).
  bool contains(size_t index) const;
  // Stores a copy of `img` for `index` when it fits in the remaining budget and returns the image to
  // use: the stored one, or the one another thread stored first. Over budget: nullopt. Thread-safe.
  // The copy goes into the cache's arena (byte_arena.h), so the caller's buffer stays warm for reuse.
  std::optional<ImageView> insert(size_t index, ImageView img);
  // Whether an image of `pixel_bytes` would still fit in the budget (it never will again once false:
  // entries are never evicted).
  bool has_room_for(size_t pixel_bytes) const;
  // Drops every entry. Not safe while other threads use the cache.
  void clear();

  // Bytes charged for an image of `pixel_bytes`: the pixels plus the bookkeeping.
  static size_t cost(size_t pixel_bytes);
  size_t size() const { return n_; }
  size_t budget() const { return budget_; }
  size_t bytes_used() const { return used_.load(std::memory_order_relaxed); }
  size_t entries() const { return entries_.load(std::memory_order_relaxed); }
  // Lookups that found / did not find an image, since construction or clear().
  size_t hits() const { return hits_.load(std::memory_order_relaxed); }
  size_t misses() const { return misses_.load(std::memory_order_relaxed); }

 private:
  size_t n_, budget_;
  ByteArena arena_;  // entries: an ImageView, then its pixels
  std::unique_ptr<std::atomic<const ImageView*>[]> slots_;
  std::atomic<size_t> used_{0}, entries_{0};
  mutable std::atomic<size_t> hits_{0}, misses_{0};
};

}  // namespace rtune::io
