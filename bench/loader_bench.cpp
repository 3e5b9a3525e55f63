// bench_loader: data-pipeline throughput (img/s) for decode only, the training transforms, and the
// decoded cache (epoch 2). The last line is JSON. The work is finetune/loader_bench.cpp.
// Usage: bench_loader --data DIR [--threads N] [--batch B] [--transforms SPEC] [--cache[=MiB]]
//                     [--prefetch P] [--read-ahead R] [--skip-decode] [--dct] [--images N] [--seed S]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/error.h"
#include "finetune/loader_bench.h"

namespace {

constexpr const char* kUsage =
    "usage: bench_loader --data DIR [--threads N] [--batch B] [--transforms SPEC] [--cache[=MiB]]\n"
    "                    [--prefetch P] [--read-ahead R] [--skip-decode] [--dct] [--images N] [--seed S]\n"
    "  --transforms  pipeline spec or preset (default imagenet-train)\n"
    "  --cache       also time epoch 2 from the decoded cache (budget MiB; default half the RAM)\n"
    "  --read-ahead  files named to the OS per worker ahead of the workers (default 8; 0: off)\n"
    "  --skip-decode leave out the decode-only pass, which also warms the page cache\n"
    "  --dct         allow JPEG DCT-domain downscaling (not torchvision-exact)\n"
    "  --images      use only the first N images of the folder\n";

long long parse_number(std::string_view flag, const std::string& v) {
  char* end = nullptr;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || x < 0) rtune::fail("bench_loader: {} wants a non-negative integer, got '{}'", flag, v);
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    rtune::finetune::LoaderBenchOptions opt;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) rtune::fail("bench_loader: {} needs a value\n{}", a, kUsage);
        return argv[++i];
      };
      if (a == "--data") opt.data = value();
      else if (a == "--threads") opt.threads = int(parse_number(a, value()));
      else if (a == "--batch") opt.batch_size = int(parse_number(a, value()));
      else if (a == "--transforms") opt.transforms = value();
      else if (a == "--prefetch") opt.prefetch = int(parse_number(a, value()));
      else if (a == "--read-ahead") opt.read_ahead = int(parse_number(a, value()));
      else if (a == "--skip-decode") opt.decode_pass = false;
      else if (a == "--images") opt.max_images = size_t(parse_number(a, value()));
      else if (a == "--seed") opt.seed = uint64_t(parse_number(a, value()));
      else if (a == "--dct") opt.dct_scaling = true;
      else if (a == "--cache") opt.cache = true;
      else if (a.rfind("--cache=", 0) == 0) opt.cache = true, opt.cache_bytes = size_t(parse_number("--cache", a.substr(8))) << 20;
      else if (a == "-h" || a == "--help") return std::fputs(kUsage, stdout), 0;
      else rtune::fail("bench_loader: unknown argument '{}'\n{}", a, kUsage);
    }
    if (opt.data.empty()) rtune::fail("bench_loader: --data DIR is required\n{}", kUsage);
    auto r = rtune::finetune::run_loader_bench(opt, [](const std::string& s) { std::printf("%s\n", s.c_str()); });
    std::printf("%s\n", rtune::finetune::to_json(r).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
