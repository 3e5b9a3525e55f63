// Decoded-image cache (see cache.h): one atomic pointer per dataset index, a byte budget reserved
// with compare-and-swap, entries copied into an arena and never evicted.
#include "io/data/cache.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <variant>

#include "engine/error.h"
#include "io/image/file_read.h"

namespace rtune::io {

CachePlan cache_plan(const Pipeline& pipeline, bool dct_scaling) {
  CachePlan plan;
  const auto& ts = pipeline.transforms;
  while (plan.prefix < ts.size() &&
         (std::holds_alternative<Resize>(ts[plan.prefix]) || std::holds_alternative<CenterCrop>(ts[plan.prefix])))
    ++plan.prefix;
  if (dct_scaling && !ts.empty()) {
    if (std::holds_alternative<Resize>(ts.front())) plan.hint = pipeline.decode_hint();
    else if (auto* rrc = std::get_if<RandomResizedCrop>(&ts.front())) plan.hint.min_short_side = std::max(rrc->height, rrc->width);
  }
  return plan;
}

namespace {

// Where a Resize (+ CenterCrop) prefix lands for an image of a given size: the resized size and the
// box of it that is kept.
struct ResizeCrop {
  int resized_h = 0, resized_w = 0;
  CropBox keep;
};

// nullopt when the prefix is not Resize [+ CenterCrop] or the crop needs padding (general path).
std::optional<ResizeCrop> resize_crop_of(const Pipeline& pipeline, const CachePlan& plan, int h, int w) {
  const auto& ts = pipeline.transforms;
  if (plan.hint.any() || plan.prefix == 0 || plan.prefix > 2) return std::nullopt;
  const auto* r = std::get_if<Resize>(&ts[0]);
  const auto* c = plan.prefix == 2 ? std::get_if<CenterCrop>(&ts[1]) : nullptr;
  if (!r || (plan.prefix == 2 && !c)) return std::nullopt;
  ResizeCrop rc;
  std::tie(rc.resized_h, rc.resized_w) = r->size > 0 ? shorter_side_size(h, w, r->size) : std::pair{r->height, r->width};
  rc.keep = {0, 0, rc.resized_h, rc.resized_w};
  if (c) {
    if (c->height > rc.resized_h || c->width > rc.resized_w) return std::nullopt;
    rc.keep = center_crop_box(rc.resized_h, rc.resized_w, c->height, c->width);
  }
  return rc;
}

}  // namespace

void decode_prefix_into(std::span<const std::byte> bytes, std::string_view name, const Pipeline& pipeline,
                        const CachePlan& plan, Image& out, PrefixScratch& scratch) {
  const bool fusable = !plan.hint.any() && plan.prefix >= 1 && plan.prefix <= 2;
  std::optional<ResizeCrop> rc;
  ImageWindow& win = scratch.window;
  if (fusable) {
    const auto* resize = std::get_if<Resize>(&pipeline.transforms[0]);
    const Interp interp = resize ? resize->interp : Interp::bilinear;
    auto want = [&](int h, int w) -> std::optional<CropBox> {
      rc = resize_crop_of(pipeline, plan, h, w);
      if (!rc) return std::nullopt;
      return resize_source_box(h, w, rc->resized_h, rc->resized_w, rc->keep, interp);
    };
    if (!decode_jpeg_region(bytes, name, want, win)) {
      decode_image_into(bytes, name, {}, win.pixels);
      win.top = win.left = 0;
      win.full_height = win.pixels.height, win.full_width = win.pixels.width;
      rc = resize_crop_of(pipeline, plan, win.full_height, win.full_width);
    }
    if (rc) {
      out.height = out.width = 0;
      out.pixels.resize(size_t(rc->keep.height) * size_t(rc->keep.width) * 3);
      resize_into(win.pixels, win.top, win.left, {0, 0, win.full_height, win.full_width}, rc->resized_h,
                  rc->resized_w, rc->keep, interp, out.pixels.data(), scratch.resize);
      out.height = rc->keep.height;
      out.width = rc->keep.width;
      return;
    }
    out = win.pixels;  // decoded whole; the transforms below run one by one
  } else {
    decode_image_into(bytes, name, plan.hint, out);
  }
  Rng unused(0);  // prefix transforms are deterministic; apply() still takes an Rng
  for (size_t i = 0; i < plan.prefix; ++i) out = apply(pipeline.transforms[i], out, unused);
}

Image load_prefix(const std::filesystem::path& path, const Pipeline& pipeline, const CachePlan& plan) {
  std::vector<std::byte> file_buf;
  read_file(path, file_buf);
  Image img;
  PrefixScratch scratch;
  decode_prefix_into(file_buf, path.string(), pipeline, plan, img, scratch);
  return img;
}

size_t physical_memory_bytes() {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? size_t(pages) * size_t(page) : 0;
}

namespace {

// An entry is its ImageView, then the pixels at this offset (the arena's alignment).
constexpr size_t kEntryHeader = 64;
static_assert(sizeof(ImageView) <= kEntryHeader);

}  // namespace

DecodedCache::DecodedCache(size_t num_samples, size_t budget_bytes)
    : n_(num_samples),
      budget_(budget_bytes),
      arena_(std::min<size_t>(budget_bytes, size_t(64) << 20)),
      slots_(new std::atomic<const ImageView*>[num_samples]) {
  for (size_t i = 0; i < n_; ++i) slots_[i].store(nullptr, std::memory_order_relaxed);
}

DecodedCache::~DecodedCache() { clear(); }

void DecodedCache::clear() {
  for (size_t i = 0; i < n_; ++i) slots_[i].store(nullptr, std::memory_order_relaxed);
  arena_.clear();
  used_ = 0;
  entries_ = 0;
  hits_ = 0;
  misses_ = 0;
}

size_t DecodedCache::cost(size_t pixel_bytes) { return pixel_bytes + kEntryHeader; }

bool DecodedCache::has_room_for(size_t pixel_bytes) const {
  size_t used = used_.load(std::memory_order_relaxed);
  return cost(pixel_bytes) <= budget_ - std::min(used, budget_);
}

std::optional<ImageView> DecodedCache::find(size_t index) const {
  RTUNE_CHECK(index < n_, "DecodedCache: index {} out of range (cache has {} slots)", index, n_);
  const ImageView* p = slots_[index].load(std::memory_order_acquire);
  (p ? hits_ : misses_).fetch_add(1, std::memory_order_relaxed);
  if (!p) return std::nullopt;
  return *p;
}

bool DecodedCache::contains(size_t index) const {
  return index < n_ && slots_[index].load(std::memory_order_acquire) != nullptr;
}

std::optional<ImageView> DecodedCache::insert(size_t index, ImageView img) {
  RTUNE_CHECK(index < n_, "DecodedCache: index {} out of range (cache has {} slots)", index, n_);
  if (const ImageView* p = slots_[index].load(std::memory_order_acquire)) return *p;
  const size_t c = cost(img.bytes());
  size_t used = used_.load(std::memory_order_relaxed);
  do {
    if (c > budget_ - std::min(used, budget_)) return std::nullopt;
  } while (!used_.compare_exchange_weak(used, used + c, std::memory_order_relaxed));
  uint8_t* mem = arena_.allocate(c);
  uint8_t* pixels = mem + kEntryHeader;
  if (img.bytes()) std::memcpy(pixels, img.data, img.bytes());
  const ImageView* entry = new (mem) ImageView(pixels, img.height, img.width);
  const ImageView* expected = nullptr;
  if (!slots_[index].compare_exchange_strong(expected, entry, std::memory_order_acq_rel)) {
    // Another thread stored this index first: its entry is used; this copy stays unused in the arena.
    used_.fetch_sub(c, std::memory_order_relaxed);
    return *expected;
  }
  entries_.fetch_add(1, std::memory_order_relaxed);
  return *entry;
}

}  // namespace rtune::io
