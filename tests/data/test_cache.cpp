// data_cache: the decoded-image cache. Cached and uncached loaders give identical batches for the
// same seed (several pipelines, thread counts, partial budgets, DCT scaling); epoch 2 really skips
// decoding (the files are deleted and the epoch still matches); first-come budget accounting; and
// concurrent inserts/finds agree on one image per index; the arena the entries live in.
#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <set>
#include <thread>

#include "engine/error.h"
#include "io/data/cache.h"
#include "io/data/loader.h"
#include "io/transforms/geometry.h"
#include "tests/data/tree_util.h"

using namespace rtune;
using namespace rtune::io;

namespace {

// 12 samples over 3 classes: small fixtures of every format plus two 300x200 JPEGs.
struct Tree {
  test::TempTree t{"cache"};
  Dataset ds;
  Tree() {
    const char* files[] = {"rgb.png", "smooth.jpg", "rgb420.jpg", "gray.png", "rgb.bmp",
                           "rgba.png", "rgb444.jpg", "palette.png", "progressive.jpg", "cmyk.jpg"};
    for (int i = 0; i < 10; ++i) t.put(fmt::format("c{}/{:02d}_{}", i % 3, i, files[i]), files[i]);
    for (int i = 10; i < 12; ++i) {
      auto dst = t.root / fmt::format("c{}/{:02d}_gradient.jpg", i % 3, i);
      std::filesystem::copy_file(test::fixture("gradient_300x200_q90.jpg"), dst);
    }
    ds = image_folder(t.root);
  }
};

std::vector<Batch> run_epoch(Loader& l, uint64_t epoch) {
  l.start_epoch(epoch);
  std::vector<Batch> out;
  Batch b;
  while (l.next(b)) out.push_back(b);
  return out;
}

void check_same(const std::vector<Batch>& x, const std::vector<Batch>& y, const std::string& what) {
  INFO(what);
  REQUIRE(x.size() == y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    INFO("batch " << i);
    CHECK(x[i].indices == y[i].indices);
    CHECK(x[i].labels == y[i].labels);
    CHECK(x[i].images == y[i].images);
  }
}

Image filled(int h, int w, uint8_t v) { return Image(h, w, v); }

}  // namespace

TEST_CASE("cache_plan: leading Resize/CenterCrop are cached; DCT hints only when allowed") {
  CachePlan eval = cache_plan(parse_pipeline("resize=256,center_crop=224,hflip,normalize=imagenet"), false);
  CHECK(eval.prefix == 2);
  CHECK(!eval.hint.any());
  CHECK(cache_plan(parse_pipeline("resize=256,center_crop=224"), true).hint.min_short_side == 256);
  CachePlan rrc = cache_plan(parse_pipeline("imagenet-train"), true);
  CHECK(rrc.prefix == 0);
  CHECK(rrc.hint.min_short_side == 224);
  CHECK(!cache_plan(parse_pipeline("imagenet-train"), false).hint.any());
  CHECK(cache_plan(parse_pipeline("hflip,resize=20,center_crop=8"), true).prefix == 0);  // random first
  CHECK(!cache_plan(parse_pipeline("cifar-train"), true).hint.any());
}

TEST_CASE("DecodedCache: first come, first kept, within the byte budget") {
  const size_t c = DecodedCache::cost(4 * 5 * 3);
  DecodedCache cache(6, 3 * c + c / 2);  // room for three 4x5 images
  CHECK(!cache.find(0));
  Image first = filled(4, 5, 10);
  std::optional<ImageView> a = cache.insert(0, first);
  REQUIRE(a);
  CHECK(a->data != first.pixels.data());  // a copy, in the cache's memory
  first.pixels.assign(first.pixels.size(), 0);
  CHECK(a->data[0] == 10);
  CHECK(a->height == 4);
  CHECK(a->width == 5);
  CHECK(reinterpret_cast<uintptr_t>(a->data) % 64 == 0);
  CHECK(cache.find(0)->data == a->data);
  CHECK(cache.insert(0, filled(4, 5, 99))->data == a->data);  // already stored: the first image stays
  CHECK(a->data[0] == 10);
  CHECK(cache.insert(1, filled(4, 5, 11)));
  CHECK(cache.insert(2, filled(4, 5, 12)));
  CHECK(!cache.insert(3, filled(4, 5, 13)));  // over budget
  CHECK(!cache.find(3));
  CHECK(cache.entries() == 3);
  CHECK(cache.bytes_used() == 3 * c);
  CHECK(cache.bytes_used() <= cache.budget());
  CHECK(cache.hits() == 1);
  CHECK(cache.misses() == 2);
  for (int i = 0; i < 3; ++i) {  // every entry's pixels intact after the later inserts
    std::optional<ImageView> e = cache.find(size_t(i));
    REQUIRE(e);
    for (size_t k = 0; k < e->bytes(); ++k) REQUIRE(e->data[k] == uint8_t(10 + i));
  }
  CHECK_THROWS_WITH_AS(cache.find(6), doctest::Contains("out of range"), Error);
  cache.clear();
  CHECK(cache.entries() == 0);
  CHECK(cache.bytes_used() == 0);
  CHECK(!cache.find(0));
  CHECK(cache.insert(3, filled(4, 5, 13)));  // budget is free again
}

TEST_CASE("DecodedCache: concurrent inserts and finds agree on one image per index") {
  const int n = 64, threads = 8;
  const size_t c = DecodedCache::cost(3 * 3 * 3);
  DecodedCache cache(n, 40 * c);  // room for 40 of the 64
  std::vector<std::vector<const uint8_t*>> got(threads, std::vector<const uint8_t*>(n));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (int k = 0; k < n; ++k) {
        int i = (k * 7 + t * 13) % n;  // each thread visits the indices in its own order
        std::optional<ImageView> p = cache.find(size_t(i));
        if (!p) p = cache.insert(size_t(i), filled(3, 3, uint8_t(i)));
        got[size_t(t)][size_t(i)] = p ? p->data : nullptr;
      }
    });
  for (auto& th : pool) th.join();
  CHECK(cache.entries() == 40);
  CHECK(cache.bytes_used() == 40 * c);
  size_t stored = 0;
  for (int i = 0; i < n; ++i) {
    std::optional<ImageView> p = cache.find(size_t(i));
    stored += p.has_value();
    if (p) CHECK(p->data[4] == uint8_t(i));
    for (int t = 0; t < threads; ++t)  // a thread saw either nothing (over budget) or the stored image
      if (got[size_t(t)][size_t(i)]) CHECK(got[size_t(t)][size_t(i)] == (p ? p->data : nullptr));
  }
  CHECK(stored == 40);
}

TEST_CASE("ByteArena: aligned, disjoint, chunked; oversized requests get their own mapping") {
  ByteArena arena(4096);
  std::vector<std::pair<uint8_t*, size_t>> blocks;
  for (size_t n : {1, 63, 64, 65, 1000, 3000, 10000, 5, 4096}) {
    uint8_t* p = arena.allocate(n);
    REQUIRE(p != nullptr);
    CHECK(reinterpret_cast<uintptr_t>(p) % 64 == 0);
    std::memset(p, int(blocks.size() + 1), n);
    blocks.emplace_back(p, n);
  }
  for (size_t b = 0; b < blocks.size(); ++b)  // no block overwrote another
    for (size_t k = 0; k < blocks[b].second; ++k) REQUIRE(blocks[b].first[k] == uint8_t(b + 1));
  CHECK(arena.mapped_bytes() >= 10000 + 4096);
  arena.clear();
  CHECK(arena.mapped_bytes() == 0);
  CHECK(arena.allocate(100) != nullptr);
}

TEST_CASE("cached and uncached loaders give identical batches for the same seed") {
  Tree tr;
  REQUIRE(tr.ds.samples.size() == 12);
  const char* specs[] = {"resize=20,center_crop=16x12,hflip,jitter=0.4:0.4:0.4:0.1",
                         "random_resized_crop=16,hflip,rotate=10,grayscale=0.2",
                         "random_crop=12:pad=2:reflect,vflip", "resize=24x18,rotate=30:bilinear,center_crop=16"};
  for (const char* spec : specs) {
    for (size_t budget : {size_t(1) << 30, size_t(6000)}) {  // everything / only a few images
      Pipeline p = parse_pipeline(spec);
      LoaderOptions plain{.batch_size = 5, .threads = 1, .shuffle = true, .seed = 5};
      LoaderOptions cached = plain;
      cached.threads = 3;
      cached.prefetch = 3;
      cached.read_ahead = 1;  // 3 samples ahead: the hint runs (a queue holds up to 15), and counts no lookup
      cached.cache_bytes = budget;
      Loader a(tr.ds, p, plain), b(tr.ds, p, cached);
      for (uint64_t epoch : {0, 1, 2}) check_same(run_epoch(a, epoch), run_epoch(b, epoch), fmt::format("{} budget {} epoch {}", spec, budget, epoch));
      REQUIRE(b.cache() != nullptr);
      CHECK(b.cache()->bytes_used() <= budget);
      if (budget > 6000) {
        CHECK(b.cache()->entries() == 12);
        CHECK(b.cache()->hits() == 24);  // epochs 1 and 2
      } else {
        CHECK(b.cache()->entries() < 12);
      }
    }
  }
}

TEST_CASE("the cache stores the image after the leading deterministic transforms, DCT-scaled when allowed") {
  Tree tr;
  Pipeline p = parse_pipeline("resize=64,center_crop=48,hflip");
  LoaderOptions dct{.batch_size = 4, .threads = 2, .seed = 3, .dct_scaling = true, .cache_bytes = size_t(1) << 30};
  LoaderOptions dct_nocache = dct;
  dct_nocache.cache_bytes = 0;
  Loader a(tr.ds, p, dct), b(tr.ds, p, dct_nocache);
  for (uint64_t epoch : {0, 1}) check_same(run_epoch(a, epoch), run_epoch(b, epoch), "dct");
  for (size_t i = 0; i < 12; ++i) {
    std::optional<ImageView> img = a.cache()->find(i);
    REQUIRE(img);
    CHECK(img->height == 48);  // resize + center_crop were applied before caching
    CHECK(img->width == 48);
  }
  // The 300x200 JPEG decoded at 1/2 (150x100 still has a short side >= 64) differs from a full decode.
  size_t g = 0;
  while (g < 12 && tr.ds.samples[g].path.filename().string().find("gradient") == std::string::npos) ++g;
  REQUIRE(g < 12);
  CachePlan plan = cache_plan(p, true);
  Image full = load_prefix(tr.ds.samples[g].path, p, cache_plan(p, false));
  Image scaled = load_prefix(tr.ds.samples[g].path, p, plan);
  CHECK(scaled.pixels == a.cache()->find(g)->copy().pixels);
  CHECK(decode_image(tr.ds.samples[g].path, plan.hint).height == 100);
  CHECK(full.pixels != scaled.pixels);
}

TEST_CASE("epoch 2 from the cache does not touch the files") {
  Tree tr;
  Pipeline p = parse_pipeline("random_resized_crop=16,hflip,jitter=0.2:0.2:0.2:0.05");
  LoaderOptions opt{.batch_size = 4, .threads = 2, .shuffle = true, .seed = 11, .strict = true};
  Loader plain(tr.ds, p, opt);
  auto want = run_epoch(plain, 1);
  opt.cache_bytes = size_t(1) << 30;
  Loader cached(tr.ds, p, opt);
  run_epoch(cached, 0);
  std::filesystem::remove_all(tr.t.root);  // a decode would now fail, and strict makes that an error
  check_same(run_epoch(cached, 1), want, "after deleting the files");
  CHECK(cached.replaced_samples() == 0);
  CHECK(cached.cache()->hits() == 12);
  CHECK_THROWS_AS(run_epoch(plain, 1), Error);  // the uncached loader does need the files
}

TEST_CASE("prefetch depth: any depth gives the same batches; buffers rotate without reallocation") {
  Tree tr;
  Pipeline p = parse_pipeline("random_crop=8,hflip");
  std::vector<Batch> ref;
  for (int depth : {1, 2, 5}) {
    LoaderOptions opt{.batch_size = 2, .threads = 2, .seed = 9, .prefetch = depth};
    Loader l(tr.ds, p, opt);
    auto got = run_epoch(l, 0);
    if (ref.empty()) ref = got;
    else check_same(got, ref, fmt::format("prefetch {}", depth));
    std::set<const uint8_t*> seen;
    Batch b;
    for (int epoch = 0; epoch < 3; ++epoch) {
      l.start_epoch(uint64_t(epoch));
      while (l.next(b)) seen.insert(b.images.data());
    }
    CHECK(seen.size() <= size_t(depth) + 1);  // the slots plus the caller's batch, over 18 batches
  }
  CHECK_THROWS_WITH_AS(Loader(tr.ds, p, {.prefetch = 0}), doctest::Contains("prefetch"), Error);
}

TEST_CASE("resize_into of a region == resize(crop()) for every branch of the resampler") {
  Image img = decode_image(test::fixture("gradient_300x200_q90.jpg"));
  REQUIRE(img.height == 200);
  struct Case { int top, left, h, w, oh, ow; };
  const Case cases[] = {
      {0, 0, 200, 300, 224, 224},  // whole image, width shrinks, height grows
      {13, 27, 151, 97, 64, 64},   // both shrink (horizontal first)
      {5, 9, 180, 40, 60, 80},     // height shrinks, width grows (vertical first)
      {50, 50, 30, 30, 30, 30},    // same size: a copy
      {10, 200, 37, 100, 37, 33},  // width only
      {0, 1, 19, 7, 57, 7},        // height only, upsampling
  };
  std::vector<uint8_t> scratch;
  for (const Case& c : cases)
    for (Interp interp : {Interp::bilinear, Interp::nearest}) {
      INFO("box " << c.top << "," << c.left << " " << c.h << "x" << c.w << " -> " << c.oh << "x" << c.ow);
      Image want = resize(crop(img, c.top, c.left, c.h, c.w), c.oh, c.ow, interp);
      Image got(c.oh, c.ow, 0xAB);  // junk-filled: an unwritten byte would show
      resize_into(img, 0, 0, {c.top, c.left, c.h, c.w}, c.oh, c.ow, {0, 0, c.oh, c.ow}, interp, got.pixels.data(), scratch);
      CHECK_IMAGE_NEAR(got, want, 0, "region resize");
    }
  std::vector<uint8_t> out(12);
  CHECK_THROWS_WITH_AS(resize_into(img, 0, 0, {190, 0, 20, 10}, 2, 2, {0, 0, 2, 2}, Interp::bilinear, out.data(), scratch),
                       doctest::Contains("does not hold"), Error);
}

TEST_CASE("resize_into: any output box of any region, from a window holding only the pixels it needs") {
  Image img = decode_image(test::fixture("gradient_300x200_q90.jpg"));
  for (auto& p : img.pixels) p = uint8_t(p * 37 + (&p - img.pixels.data()) * 11);  // texture, so a shifted tap shows
  Rng r(5);
  std::vector<uint8_t> scratch;
  int cases = 0;
  for (int i = 0; i < 300; ++i) {
    CropBox region = i % 3 == 0 ? CropBox{0, 0, 200, 300} : random_resized_crop_params(200, 300, r, {0.02, 1.0});
    int oh = int(r.randint(1, 261)), ow = int(r.randint(1, 261));
    if (i % 7 == 0) oh = region.height;  // one axis not resized
    if (i % 11 == 0) ow = region.width;
    CropBox box = random_resized_crop_params(oh, ow, r, {0.05, 1.0});
    Interp interp = i % 4 == 3 ? Interp::nearest : Interp::bilinear;
    INFO("case " << i << ": region (" << region.top << ", " << region.left << ") " << region.height << "x" << region.width
                 << " -> " << oh << "x" << ow << ", box (" << box.top << ", " << box.left << ") " << box.height << "x"
                 << box.width << (interp == Interp::nearest ? " nearest" : " bilinear"));
    Image want = crop(resize(crop(img, region.top, region.left, region.height, region.width), oh, ow, interp), box.top,
                      box.left, box.height, box.width);
    // The window: exactly the pixels resize_source_box names (in image coordinates), nothing more.
    CropBox need = resize_source_box(region.height, region.width, oh, ow, box, interp);
    need.top += region.top, need.left += region.left;
    Image window = crop(img, need.top, need.left, need.height, need.width);
    Image got(box.height, box.width, 0xAB);
    resize_into(window, need.top, need.left, region, oh, ow, box, interp, got.pixels.data(), scratch);
    CHECK_IMAGE_NEAR(got, want, 0, "resize_into");
    ++cases;
    if (need.height > 1) {  // one row short of what it needs: a clear error, never a read outside
      Image short_window = crop(img, need.top + 1, need.left, need.height - 1, need.width);
      CHECK_THROWS_WITH_AS(resize_into(short_window, need.top + 1, need.left, region, oh, ow, box, interp,
                                       got.pixels.data(), scratch),
                           doctest::Contains("does not hold"), Error);
    }
  }
  CHECK(cases == 300);
}

TEST_CASE("Resize [+ CenterCrop] prefixes in one fused resize (JPEGs decoded partially) equal the transforms one by one") {
  const char* files[] = {"region/s420_131x97.jpg", "region/s422_75x203.jpg", "region/s444_64x80.jpg",
                         "region/gray_99x61.jpg",  "region/s420_20x34.jpg",  "region/progressive_60x70.jpg",
                         "decode/rgb.png",         "decode/cmyk.jpg",        "decode/smooth.jpg"};
  const char* specs[] = {"resize=40,center_crop=32", "resize=64x50,center_crop=20x48", "resize=23:nearest,center_crop=17",
                         "resize=300,center_crop=256", "resize=50", "resize=17x90:bilinear",
                         "resize=20,center_crop=40",  // the crop pads: the general path
                         "resize=33,center_crop=33"};
  for (const char* spec : specs) {
    Pipeline p = parse_pipeline(spec);
    CachePlan plan = cache_plan(p, false);
    REQUIRE(plan.prefix == p.transforms.size());
    for (const char* f : files) {
      auto path = test::fixture(std::string("data/") + f);
      Image want = decode_image(path);
      Rng unused(0);
      for (const Transform& t : p.transforms) want = apply(t, want, unused);
      CHECK_IMAGE_NEAR(load_prefix(path, p, plan), want, 0, fmt::format("{} on {}", spec, f));
    }
  }
}

TEST_CASE("loader fast paths (partial decode, crop+resize into the batch, in-place flips) equal Pipeline::apply") {
  Tree tr;
  const char* specs[] = {"random_resized_crop=24,hflip", "random_resized_crop=20x12:nearest:scale=0.3-1,vflip,hflip",
                         "resize=30,center_crop=20,hflip=0.7,vflip", "resize=18x22", "random_resized_crop=16",
                         "random_resized_crop=20,hflip,jitter=0.3:0.3:0.3:0.05,rotate=15"};  // crop, then the general path
  for (const char* spec : specs) {
    Pipeline p = parse_pipeline(spec);
    // No cache (JPEGs decoded only down to the crop box), a cache too small for the 300x200 JPEGs
    // (those are decoded partially, the rest cached), and a cache that keeps everything.
    for (size_t cache : {size_t(0), size_t(100000), size_t(1) << 30}) {
      Loader l(tr.ds, p, {.batch_size = 5, .threads = 2, .seed = 21, .cache_bytes = cache});
      for (uint64_t epoch : {0, 1}) {
        auto batches = run_epoch(l, epoch);
        for (const Batch& b : batches)
          for (int64_t i = 0; i < b.size; ++i) {
            size_t index = size_t(b.indices[size_t(i)]);
            Rng rng = Rng::for_key(21, epoch, index);
            Image want = p.apply(decode_image(tr.ds.samples[index].path), rng);
            Image got(b.height, b.width);
            std::copy_n(b.images.begin() + i * int64_t(got.pixels.size()), got.pixels.size(), got.pixels.begin());
            CHECK_IMAGE_NEAR(got, want, 0, fmt::format("{} cache {} epoch {} sample {}", spec, cache, epoch, index));
          }
      }
      bool rrc_first = std::string_view(spec).starts_with("random_resized_crop");
      INFO(spec << ", cache " << cache);
      if (!rrc_first || cache == size_t(1) << 30) CHECK(l.partial_decodes() == 0);
      else CHECK(l.partial_decodes() > 0);
    }
  }
}

// Counts heap allocations of at least kBig bytes while `g_count_big` is set (this test binary only).
namespace {
constexpr size_t kBig = 40000;
std::atomic<bool> g_count_big{false};
std::atomic<size_t> g_big_allocs{0};
}  // namespace

void* operator new(size_t n) {
  if (n >= kBig && g_count_big.load(std::memory_order_relaxed)) g_big_allocs.fetch_add(1);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

TEST_CASE("steady state: no batch-sized or image-sized allocation per batch (crop+flip fast path)") {
  Tree tr;  // includes two 300x200 JPEGs: a decoded one is 180,000 bytes, a batch 4x64x64x3 = 49,152
  Loader l(tr.ds, parse_pipeline("random_resized_crop=64,hflip"), {.batch_size = 4, .threads = 1, .seed = 2});
  Batch b;
  while (l.next(b)) {}  // epoch 0 sizes the slots, the caller's batch and the worker's scratch
  g_big_allocs = 0;
  g_count_big = true;
  for (uint64_t epoch : {1, 2}) {
    l.start_epoch(epoch);
    while (l.next(b)) {}
  }
  g_count_big = false;
  CHECK(g_big_allocs.load() == 0);
  // The counter works: a fresh decode of the big JPEG allocates its buffer.
  g_count_big = true;
  Image img = decode_image(test::fixture("gradient_300x200_q90.jpg"));
  g_count_big = false;
  CHECK(g_big_allocs.load() >= 1);
}
