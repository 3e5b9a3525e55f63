// data_loader: batches equal the per-sample pipeline, labels/order/short last batch, determinism for
// a seed whatever the thread count, buffer reuse, and decode failures replaced or fatal (strict).
#include <doctest/doctest.h>

#include <set>

#include "engine/error.h"
#include "io/data/loader.h"
#include "io/image/decode.h"
#include "tests/data/tree_util.h"

using namespace rtune;
using namespace rtune::io;

namespace {

// 11 samples over 3 classes, images of different sizes and formats.
struct Tree {
  test::TempTree t{"loader"};
  Dataset ds;
  Tree() {
    const char* files[] = {"rgb.png", "smooth.jpg", "rgb420.jpg", "gray.png", "rgb.bmp", "rgba.png",
                           "rgb444.jpg", "palette.png", "progressive.jpg", "la.png", "cmyk.jpg"};
    for (int i = 0; i < 11; ++i) {
      std::string name = files[i];
      t.put(fmt::format("c{}/{:02d}_{}", i % 3, i, name), name);
    }
    ScanOptions opt;
    ds = image_folder(t.root, opt);
  }
};

std::vector<Batch> run_epoch(Loader& l, uint64_t epoch) {
  l.start_epoch(epoch);
  std::vector<Batch> out;
  Batch b;
  while (l.next(b)) out.push_back(b);
  return out;
}

}  // namespace

TEST_CASE("batches hold exactly what the pipeline makes of each sample, in order") {
  Tree tr;
  REQUIRE(tr.ds.samples.size() == 11);
  LoaderOptions opt{.batch_size = 4, .threads = 3, .shuffle = false};
  Loader loader(tr.ds, parse_pipeline("resize=20,center_crop=16x12"), opt);
  CHECK(loader.batches_per_epoch() == 3);
  auto batches = run_epoch(loader, 0);
  REQUIRE(batches.size() == 3);
  CHECK(batches[2].size == 3);  // 11 = 4 + 4 + 3
  size_t k = 0;
  for (const Batch& b : batches) {
    CHECK(b.height == 16);
    CHECK(b.width == 12);
    for (int64_t i = 0; i < b.size; ++i, ++k) {
      CHECK(b.indices[i] == int64_t(k));
      CHECK(b.labels[i] == tr.ds.samples[k].label);
      Rng unused(0);
      Image want = center_crop(resize_shorter(decode_image(tr.ds.samples[k].path), 20), 16, 12);
      std::vector<uint8_t> got(b.images.begin() + i * 16 * 12 * 3, b.images.begin() + (i + 1) * 16 * 12 * 3);
      CHECK(got == want.pixels);
    }
  }
  LoaderOptions drop = opt;
  drop.drop_last = true;
  Loader dl(tr.ds, parse_pipeline("center_crop=8"), drop);
  CHECK(run_epoch(dl, 0).size() == 2);
}

TEST_CASE("same seed: identical batches for 1 or 5 threads; epochs and seeds differ") {
  Tree tr;
  Pipeline p = parse_pipeline("random_resized_crop=16,hflip,rotate=10,jitter=0.4:0.4:0.4:0.1,grayscale=0.2");
  LoaderOptions one{.batch_size = 3, .threads = 1, .shuffle = true, .seed = 77};
  LoaderOptions five = one;
  five.threads = 5;
  Loader a(tr.ds, p, one), b(tr.ds, p, five);
  for (uint64_t epoch : {0, 1}) {
    auto x = run_epoch(a, epoch), y = run_epoch(b, epoch);
    REQUIRE(x.size() == y.size());
    for (size_t i = 0; i < x.size(); ++i) {
      CHECK(x[i].images == y[i].images);
      CHECK(x[i].labels == y[i].labels);
      CHECK(x[i].indices == y[i].indices);
    }
  }
  auto e0 = run_epoch(a, 0), e1 = run_epoch(a, 1);
  CHECK(e0[0].indices != e1[0].indices);  // reshuffled (4 batches; a collision is astronomically unlikely)
  std::set<int64_t> all;
  for (auto& bt : e1) all.insert(bt.indices.begin(), bt.indices.end());
  CHECK(all.size() == 11);  // a permutation: every sample once
  LoaderOptions other = one;
  other.seed = 78;
  Loader c(tr.ds, p, other);
  CHECK(run_epoch(c, 0)[0].images != e0[0].images);
  // A batch's sample equals load_sample() for its index: augmentation keyed on (seed, epoch, index).
  Image s = a.load_sample(size_t(e1[1].indices[2]), 1);
  CHECK(std::equal(s.pixels.begin(), s.pixels.end(), e1[1].images.begin() + 2 * s.pixels.size()));
}

TEST_CASE("the caller's buffers are recycled, not reallocated per batch") {
  Tree tr;
  Loader l(tr.ds, parse_pipeline("center_crop=8"), {.batch_size = 2, .threads = 2, .shuffle = false});
  std::set<const uint8_t*> seen;
  Batch b;
  for (int epoch = 0; epoch < 3; ++epoch) {
    l.start_epoch(uint64_t(epoch));
    while (l.next(b)) seen.insert(b.images.data());
  }
  CHECK(seen.size() <= 3);  // two slots + the caller's batch rotate through 18 batches
}

TEST_CASE("a sample that fails to decode is replaced (warning) or fatal when strict") {
  test::TempTree t("loaderbad");
  t.put({{"a/0.png", "rgb.png"}, {"a/1.jpg", "truncated.jpg"}, {"b/2.png", "gray.png"}});
  // No probe: the bad file reaches the loader, as a file damaged after the scan would.
  Dataset ds = image_folder(t.root, {.probe = false});
  REQUIRE(ds.samples.size() == 3);
  Loader l(ds, parse_pipeline("center_crop=8"), {.batch_size = 3, .threads = 2, .shuffle = false});
  Batch b;
  REQUIRE(l.next(b));
  CHECK(l.replaced_samples() == 1);
  CHECK(b.indices == std::vector<int64_t>{0, 2, 2});
  CHECK(b.labels == std::vector<int64_t>{0, 1, 1});

  Loader strict(ds, parse_pipeline("center_crop=8"), {.batch_size = 3, .threads = 2, .shuffle = false, .strict = true});
  CHECK_THROWS_WITH_AS(strict.next(b), doctest::Contains("1.jpg"), Error);
}

TEST_CASE("skip_bad: a sample that fails to decode is left out of its batch, never replaced") {
  test::TempTree t("loaderskip");
  t.put({{"a/0.png", "rgb.png"}, {"a/1.jpg", "truncated.jpg"}, {"b/2.png", "gray.png"},
         {"b/3.jpg", "truncated.jpg"}, {"b/4.png", "rgb.png"}});
  Dataset ds = image_folder(t.root, {.probe = false});
  REQUIRE(ds.samples.size() == 5);
  const Pipeline p = parse_pipeline("center_crop=8");
  Loader l(ds, p, {.batch_size = 3, .threads = 2, .shuffle = false, .skip_bad = true});
  for (int epoch = 0; epoch < 2; ++epoch) {  // the list of skipped samples starts afresh each epoch
    std::vector<Batch> got = run_epoch(l, uint64_t(epoch));
    REQUIRE(got.size() == 2);  // [0, 1, 2] -> [0, 2]; [3, 4] -> [4]
    CHECK(got[0].indices == std::vector<int64_t>{0, 2});
    CHECK(got[0].labels == std::vector<int64_t>{0, 1});
    CHECK(got[1].indices == std::vector<int64_t>{4});
    CHECK(got[1].labels == std::vector<int64_t>{1});
    CHECK(got[1].size == 1);
    // The kept samples' pixels are the ones the pipeline makes of them, moved down over the gaps.
    const size_t bytes = 8 * 8 * 3;
    CHECK(std::vector<uint8_t>(got[0].images.begin() + bytes, got[0].images.end()) == l.load_sample(2, 0).pixels);
    CHECK(std::vector<uint8_t>(got[1].images.begin(), got[1].images.end()) == l.load_sample(4, 0).pixels);
    REQUIRE(l.skipped_samples().size() == 2);
    CHECK(l.skipped_samples()[0].index == 1);
    CHECK(l.skipped_samples()[1].index == 3);
    CHECK(l.skipped_samples()[0].reason.find("1.jpg") != std::string::npos);
    CHECK(l.replaced_samples() == 0);
  }
}

TEST_CASE("skip_bad: a batch whose every sample fails is passed over") {
  test::TempTree t("loaderskipall");
  t.put({{"a/0.jpg", "truncated.jpg"}, {"a/1.jpg", "truncated.jpg"}, {"b/2.png", "gray.png"}});
  Dataset ds = image_folder(t.root, {.probe = false});
  Loader l(ds, parse_pipeline("center_crop=8"), {.batch_size = 2, .threads = 1, .shuffle = false, .skip_bad = true});
  std::vector<Batch> got = run_epoch(l, 0);
  REQUIRE(got.size() == 1);
  CHECK(got[0].indices == std::vector<int64_t>{2});
  CHECK(l.skipped_samples().size() == 2);
}

// AddressSanitizer reports an allocation this large as an error and aborts instead of throwing
// std::bad_alloc, so this case is for the plain build.
#if !defined(__SANITIZE_ADDRESS__)
TEST_CASE("a batch that cannot be allocated is an error naming its size, and no worker thread is left running") {
  Tree tr;
  // 2^20 images of 4096 x 4096 x 3 bytes: 48 PiB.
  CHECK_THROWS_WITH_AS(Loader(tr.ds, parse_pipeline("resize=4096,center_crop=4096"), {.batch_size = 1 << 20, .threads = 3}),
                       doctest::Contains("a batch of 1048576 images of 4096x4096 pixels"), Error);
}
#endif

TEST_CASE("a pipeline without a fixed output size is rejected") {
  Tree tr;
  CHECK_THROWS_WITH_AS(Loader(tr.ds, parse_pipeline("hflip,grayscale=0.5"), {}), doctest::Contains("one size"), Error);
}

TEST_CASE("resize=S last (torchvision's Resize(S)): a non-square image stops the loader naming it, strict or not") {
  test::TempTree t("loadersquare");
  t.put("a/0.png", "rgb.png");  // 23x17
  Dataset ds = image_folder(t.root);
  for (bool strict : {false, true}) {
    Loader l(ds, parse_pipeline("resize=20,hflip"), {.batch_size = 1, .threads = 1, .shuffle = false, .strict = strict});
    Batch b;
    // Not replaced by another sample (there is none that would fit better: the pipeline is the problem).
    CHECK_THROWS_WITH_AS(l.next(b), doctest::Contains("0.png: resize=20 gives 20x27 for this non-square image"),
                         NonSquareInput);
  }
}

namespace {
// A HostMemory that counts and remembers its blocks (stands in for the CUDA backend's pinned memory).
struct CountingMemory {
  static inline std::set<void*> live;
  static inline int allocations = 0;
  static void* allocate(size_t n) {
    void* p = ::operator new(n);
    live.insert(p);
    ++allocations;
    return p;
  }
  static void deallocate(void* p) {
    REQUIRE(live.erase(p) == 1);  // only blocks it handed out come back to it
    ::operator delete(p);
  }
};
const HostMemory kCounting{CountingMemory::allocate, CountingMemory::deallocate};
}  // namespace

TEST_CASE("batch bytes come from the given host memory (pinned on CUDA), reused without new blocks") {
  Tree tr;
  LoaderOptions plain{.batch_size = 4, .threads = 2, .shuffle = true, .seed = 9};
  LoaderOptions pinned = plain;
  pinned.host_memory = &kCounting;
  std::vector<Batch> expect;
  {
    Loader l(tr.ds, parse_pipeline("resize=20,center_crop=16x12"), plain);
    expect = run_epoch(l, 0);
  }
  {
    Loader l(tr.ds, parse_pipeline("resize=20,center_crop=16x12"), pinned);
    Batch b;
    int after_first_epoch = 0;
    for (uint64_t epoch = 0; epoch < 3; ++epoch) {
      l.start_epoch(epoch);
      size_t i = 0;
      while (l.next(b)) {
        CHECK(b.images.get_allocator().memory == &kCounting);
        CHECK(CountingMemory::live.count(b.images.data()) == 1);
        if (epoch == 0) CHECK(std::equal(b.images.begin(), b.images.end(), expect[i].images.begin(), expect[i].images.end()));
        ++i;
      }
      if (epoch == 0) after_first_epoch = CountingMemory::allocations;
    }
    // The short last batch shrinks a buffer in place; full ones are reused: nothing new after epoch 1.
    CHECK(CountingMemory::allocations == after_first_epoch);
    CHECK(after_first_epoch <= 2 + pinned.prefetch);
  }
  CHECK(CountingMemory::live.empty());  // every block went back to its memory
}

// Issue 20: a data-parallel rank's part of each epoch, as PyTorch's DistributedSampler makes it.
TEST_CASE("shards: the epoch's order padded to a multiple of N, rank r takes every N-th; validation shards unpadded") {
  Tree tr;  // 11 samples
  Pipeline p = parse_pipeline("random_resized_crop=8,hflip");
  LoaderOptions whole{.batch_size = 2, .threads = 2, .shuffle = true, .seed = 5};
  Loader all(tr.ds, p, whole);
  const std::vector<size_t> order = all.epoch_order(3);
  for (bool pad : {true, false}) {
    CAPTURE(pad);
    std::multiset<size_t> seen;
    std::vector<std::vector<Batch>> shard_batches;
    for (size_t r = 0; r < 3; ++r) {
      LoaderOptions o = whole;
      o.shard_rank = r, o.shard_count = 3, o.shard_pad = pad;
      Loader l(tr.ds, p, o);
      const std::vector<size_t> mine = l.epoch_order(3);
      CHECK(mine.size() == (pad ? 4 : (r < 2 ? 4 : 3)));  // 11 = 3 x 4 - 1: rank 2 takes order[0] again when padded
      CHECK(l.samples_per_epoch() == mine.size());
      for (size_t i = 0; i < mine.size(); ++i) CHECK(mine[i] == order[(r + 3 * i) % order.size()]);
      seen.insert(mine.begin(), mine.end());
      // Batches carry the shard's samples with the augmentations of the whole run (keyed by dataset index).
      auto batches = run_epoch(l, 3);
      CHECK(batches.size() == l.batches_per_epoch());
      Image s = all.load_sample(size_t(batches[0].indices[1]), 3);
      CHECK(std::equal(s.pixels.begin(), s.pixels.end(), batches[0].images.begin() + s.pixels.size()));
    }
    CHECK(seen.size() == (pad ? 12 : 11));
    CHECK(std::set<size_t>(seen.begin(), seen.end()).size() == 11);  // every sample; padding repeats order[0]
  }
  LoaderOptions bad = whole;
  bad.shard_rank = 2, bad.shard_count = 2;
  CHECK_THROWS_WITH_AS(Loader(tr.ds, p, bad), doctest::Contains("shard 2 of 2 does not exist"), Error);
}
