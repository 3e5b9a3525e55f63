// End to end through the `rtune` binary, issue 21 ("no input ends in an abort"): images whose header
// reads but whose body is corrupt, hostile model metadata, broken file systems and nonsense numbers.
// Each is skipped and counted, or refused with one line "rtune: error: ..." and exit code 1.
#include <doctest/doctest.h>
#include <algorithm>
#include <fstream>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include "io/safetensors.h"
#include "tests/core/test_util.h"
#include "tests/e2e/cli_run.h"
#include "tests/train/train_test_util.h"

using namespace rtune;
namespace fs = std::filesystem;
using test::is_one_line_refusal;
using test::Run;
using test::run_rtune;

namespace {

// A PNG whose header probes fine (so the scan keeps it) and whose pixel data ends early: only a full
// decode finds it. Named to sort before make_shapes' "0000.png": the first file of its class.
fs::path put_truncated_png(const fs::path& class_dir) {
  const fs::path dst = class_dir / "00-broken.png";
  fs::create_directories(class_dir);
  fs::copy_file(fs::path(RTUNE_SOURCE_DIR) / "tests/fixtures/data/decode/truncated.png", dst,
                fs::copy_options::overwrite_existing);
  return dst;
}

// The first class folder (sorted, as ImageFolder) of `root`.
fs::path first_class(const fs::path& root) {
  std::vector<fs::path> dirs;
  for (auto& e : fs::directory_iterator(root))
    if (e.is_directory()) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  return dirs.at(0);
}

}  // namespace

TEST_CASE("bench loader: a file whose body does not decode is skipped and counted, in every pass") {
  test::TempDir tmp("e2e_bench_bad");
  test::make_shapes(tmp.path / "data", 3, 1, 16);
  const fs::path train = tmp.path / "data" / "train";
  put_truncated_png(first_class(train));
  Run r = run_rtune(tmp.path, fmt::format("bench loader --data {} --threads 2 --batch 4 --transforms center_crop=16 --cache",
                                          train.string()));
  INFO(r.out, r.err);
  REQUIRE(r.rc == 0);
  CHECK(r.err.find("00-broken.png") != std::string::npos);
  const std::string json = r.out.substr(r.out.rfind("{\"bench\""));
  auto j = nlohmann::json::parse(json);
  CHECK(j["images"] == 13);
  CHECK(j["decode_skipped"] == 1);
  CHECK(j["train_replaced"] == 1);
}

