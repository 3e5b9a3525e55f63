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

namespace {
// `rtune convert` of the tiny fixture model, with metadata key `key` then set to `value`.
fs::path model_with_metadata(const fs::path& tmp, const std::string& key, const std::string& value) {
  const fs::path good = tmp / "good.safetensors", bad = tmp / fmt::format("bad_{}.safetensors", key);
  if (!fs::exists(good)) {
    Run c = run_rtune(tmp, fmt::format("convert {} {}", (fs::path(RTUNE_SOURCE_DIR) / "tests/fixtures/tiny_resnet18.pth").string(),
                                       good.string()));
    REQUIRE(c.rc == 0);
  }
  io::SafetensorsFile f = io::SafetensorsFile::open(good);
  std::vector<io::SafetensorsEntry> entries;
  for (const auto& v : f.tensors()) entries.push_back({v.name, v.dtype, v.shape, v.bytes});
  auto meta = f.metadata();
  meta[key] = value;
  io::write_safetensors(bad, entries, meta);
  return bad;
}
}  // namespace

TEST_CASE("hostile model metadata (input_size 20000) is refused naming the value and the limit") {
  test::TempDir tmp("e2e_hostile_meta");
  test::make_shapes(tmp.path / "data", 1, 1, 16);
  const fs::path img = tmp.path / "data" / "val" / "circle" / "0000.png";
  const fs::path big = model_with_metadata(tmp.path, "input_size", "20000");
  for (const std::string cmd : {fmt::format("predict --weights {} {}", big.string(), img.string()),
                                fmt::format("eval --weights {} --data {}", big.string(), (tmp.path / "data" / "val").string()),
                                fmt::format("summary --weights {}", big.string())}) {
    CAPTURE(cmd);
    Run r = run_rtune(tmp.path, cmd);
    CAPTURE(r.err);
    CHECK(is_one_line_refusal(r));
    CHECK(r.err.find("'input_size' 20000 is over the limit of 4096") != std::string::npos);
  }
  // convert refuses to write such a file in the first place.
  Run c = run_rtune(tmp.path, fmt::format("convert {} {} --input-size 20000",
                                          (fs::path(RTUNE_SOURCE_DIR) / "tests/fixtures/tiny_resnet18.pth").string(),
                                          (tmp.path / "c.safetensors").string()));
  CHECK(c.rc == 105);  // CLI11's validation error
  CHECK(c.err.find("--input-size") != std::string::npos);
}

TEST_CASE("an eval batch that cannot be allocated is an error naming its size, not an abort in a thread") {
  test::TempDir tmp("e2e_huge_batch");
  test::make_shapes(tmp.path / "data", 1, 1, 16);
  const fs::path model = model_with_metadata(tmp.path, "input_size", "4096");
  // 4096^2 x 3 bytes x 2^20 images: 48 PiB, more than any machine's address space allows.
  Run r = run_rtune(tmp.path, fmt::format("eval --weights {} --data {} --batch 1048576 --threads 2", model.string(),
                                          (tmp.path / "data" / "val").string()));
  CAPTURE(r.err);
  CHECK(is_one_line_refusal(r));
  CHECK(r.err.find("a batch of 1048576 images of 4096x4096 pixels") != std::string::npos);
  CHECK(r.err.find("lower the batch size") != std::string::npos);
}

