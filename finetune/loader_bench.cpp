// Loader benchmark passes (see loader_bench.h). Scanning the folder is not timed; the decode pass
// also brings the files into the page cache, so every timed pass reads from memory, as PyTorch's does
// in bench/pytorch_loader.py when run after it.
#include "finetune/loader_bench.h"

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "engine/error.h"
#include "io/data/loader.h"
#include "io/image/decode.h"
#include "io/image/file_read.h"

namespace rtune::finetune {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// User + system CPU seconds of the whole process (every thread) so far.
double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + 1e-6 * double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// A timed pass: img/s of wall time and img per CPU-second (insensitive to other jobs on the machine).
struct Rate {
  double wall = 0, cpu = 0;
};

template <class Fn>
Rate timed(size_t images, Fn fn) {
  double c0 = cpu_seconds();
  auto t0 = Clock::now();
  fn();
  double wall = seconds_since(t0), cpu = cpu_seconds() - c0;
  return {double(images) / wall, cpu > 0 ? double(images) / cpu : 0};
}

size_t half_physical_memory() {
  const size_t ram = io::physical_memory_bytes();
  return ram > 0 ? ram / 2 : size_t(4) << 30;
}

// Decodes every sample at full size on `threads` threads, with per-thread buffers as the loader's
// workers have. A file whose header passed the scan but whose body does not decode is skipped, as the
// loader's workers skip it: each is warned about and counted, never allowed to escape a thread.
// Returns how many were skipped.
size_t decode_pass(const io::Dataset& ds, int threads) {
  std::atomic<size_t> next{0}, skipped{0};
  std::atomic<uint64_t> checksum{0};  // keeps the decode observable
  std::mutex warn_mu;
  std::exception_ptr unexpected;      // anything but a bad file: rethrown after the join
  auto work = [&] {
    try {
      uint64_t sum = 0;
      std::vector<std::byte> file;
      io::Image img;
      for (size_t i; (i = next.fetch_add(1)) < ds.samples.size();) {
        try {
          io::read_file(ds.samples[i].path, file);
          io::decode_image_into(file, ds.samples[i].path.string(), {}, img);
          sum += img.pixels[img.pixels.size() / 2];
        } catch (const std::exception& e) {  // rtune::Error, or std::bad_alloc for one huge image
          skipped.fetch_add(1);
          std::lock_guard<std::mutex> lk(warn_mu);
          std::fprintf(stderr, "warning: bench loader: skipping %s: %s\n", ds.samples[i].path.string().c_str(), e.what());
        }
      }
      checksum += sum;
    } catch (...) {
      std::lock_guard<std::mutex> lk(warn_mu);
      if (!unexpected) unexpected = std::current_exception();
      next.store(ds.samples.size());  // the other threads stop too
    }
  };
  std::vector<std::thread> pool;
  try {
    for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  } catch (...) {  // a thread that cannot start: the ones that did still run to the end
    for (auto& th : pool) th.join();
    throw;
  }
  work();
  for (auto& th : pool) th.join();
  if (unexpected) std::rethrow_exception(unexpected);
  return skipped.load();
}

// One epoch through `loader`: img/s from the first batch to the last (as bench/pytorch_loader.py,
// where that leaves out starting worker processes), img per CPU-second over the whole epoch. An epoch
// of one batch has no "after the first" to time: it is timed from its start.
Rate epoch_pass(io::Loader& loader, uint64_t epoch, size_t images) {
  double c0 = cpu_seconds();
  const Clock::time_point start = Clock::now();
  loader.start_epoch(epoch);
  io::Batch b;
  size_t seen = 0, first = 0;
  Clock::time_point t0;
  while (loader.next(b)) {
    if (seen == 0) t0 = Clock::now(), first = size_t(b.size);
    seen += size_t(b.size);
  }
  if (seen == first) t0 = start, first = 0;
  double wall = seconds_since(t0), cpu = cpu_seconds() - c0;
  RTUNE_CHECK(seen == images, "bench loader: epoch delivered {} samples, expected {}", seen, images);
  return {wall > 0 ? double(seen - first) / wall : 0, cpu > 0 ? double(seen) / cpu : 0};
}

std::string line(std::string_view what, Rate r) {
  return fmt::format("  {:29s}{:9.1f} img/s  ({:.1f} img per CPU-second)", what, r.wall, r.cpu);
}

}  // namespace

LoaderBenchResult run_loader_bench(const LoaderBenchOptions& opt, const std::function<void(const std::string&)>& log) {
  auto say = [&](const std::string& s) { if (log) log(s); };
  io::Dataset ds = io::image_folder(opt.data);
  RTUNE_CHECK(!ds.samples.empty(), "bench loader: no images under {}", opt.data.string());
  if (opt.max_images > 0 && ds.samples.size() > opt.max_images) ds.samples.resize(opt.max_images);
  io::Pipeline pipeline = io::parse_pipeline(opt.transforms);

  LoaderBenchResult r;
  r.images = ds.samples.size();
  r.threads = opt.threads > 0 ? opt.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  r.batch_size = opt.batch_size;
  r.pipeline = pipeline.describe();
  say(fmt::format("bench loader: {} images under {}, {} threads, batch {}, {}", r.images, opt.data.string(), r.threads,
                  r.batch_size, r.pipeline));

  if (opt.decode_pass) {
    Rate decode = timed(r.images, [&] { r.decode_skipped = decode_pass(ds, r.threads); });
    r.decode_img_s = decode.wall;
    r.decode_img_cpu_s = decode.cpu;
    say(line("decode only (full size)", decode) +
        (r.decode_skipped ? fmt::format(" {} of {} files skipped: they do not decode", r.decode_skipped, r.images)
                          : std::string()));
  }

  io::LoaderOptions lo{.batch_size = opt.batch_size, .threads = r.threads, .shuffle = true, .drop_last = false,
                   .seed = opt.seed, .strict = false, .dct_scaling = opt.dct_scaling, .prefetch = opt.prefetch,
                   .read_ahead = opt.read_ahead};
  {
    io::Loader loader(ds, pipeline, lo);
    Rate train = epoch_pass(loader, 0, r.images);
    r.train_img_s = train.wall;
    r.train_img_cpu_s = train.cpu;
    r.partial_decodes = loader.partial_decodes();
    r.train_replaced = loader.replaced_samples();
    say(line("the transforms (no cache)", train) +
        (r.partial_decodes ? fmt::format(" {} of {} JPEGs decoded only down to their crop box", r.partial_decodes, r.images)
                           : std::string()) +
        (r.train_replaced ? fmt::format(" {} samples replaced: their files do not decode", r.train_replaced)
                          : std::string()));
  }

  if (opt.cache) {
    lo.cache_bytes = opt.cache_bytes > 0 ? opt.cache_bytes : half_physical_memory();
    io::Loader loader(ds, pipeline, lo);
    Rate fill = epoch_pass(loader, 0, r.images);
    Rate cached = epoch_pass(loader, 1, r.images);
    r.cache_fill_img_s = fill.wall;
    r.cached_img_s = cached.wall;
    r.cached_img_cpu_s = cached.cpu;
    r.cache_entries = loader.cache()->entries();
    r.cache_bytes_used = loader.cache()->bytes_used();
    say(line("epoch 1, filling the cache", fill));
    say(line("epoch 2, from the cache", cached) +
        fmt::format(" {} of {} images cached, {:.1f} MiB of {:.1f} MiB", r.cache_entries, r.images,
                    double(r.cache_bytes_used) / (1 << 20), double(lo.cache_bytes) / (1 << 20)));
  }
  return r;
}

std::string to_json(const LoaderBenchResult& r) {
  std::string pipeline;
  for (char c : r.pipeline) {
    if (c == '"' || c == '\\') pipeline += '\\';
    pipeline += c;
  }
  return fmt::format(
      "{{\"bench\": \"loader\", \"images\": {}, \"threads\": {}, \"batch\": {}, \"pipeline\": \"{}\", "
      "\"decode_img_s\": {:.1f}, \"train_img_s\": {:.1f}, \"cache_fill_img_s\": {:.1f}, \"cached_img_s\": {:.1f}, "
      "\"decode_img_cpu_s\": {:.1f}, \"train_img_cpu_s\": {:.1f}, \"cached_img_cpu_s\": {:.1f}, "
      "\"cache_entries\": {}, \"cache_bytes\": {}, \"partial_decodes\": {}, \"decode_skipped\": {}, "
      "\"train_replaced\": {}}}",
      r.images, r.threads, r.batch_size, pipeline, r.decode_img_s, r.train_img_s, r.cache_fill_img_s, r.cached_img_s,
      r.decode_img_cpu_s, r.train_img_cpu_s, r.cached_img_cpu_s, r.cache_entries, r.cache_bytes_used,
      r.partial_decodes, r.decode_skipped, r.train_replaced);
}

}  // namespace rtune::finetune
