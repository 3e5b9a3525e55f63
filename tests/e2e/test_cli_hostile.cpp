// End to end through the `rtune` binary, issue 21 ("no input ends in an abort"): images whose header
// reads but whose body is corrupt, hostile model metadata, broken file systems and nonsense numbers.
// Each is skipped and counted, or refused with one line "rtune: error: ..." and exit code 1.
#include <doctest/doctest.h>
#include <algorithm>
#include <fstream>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include "io/formats/safetensors.h"
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

#if !defined(__SANITIZE_ADDRESS__)  // AddressSanitizer aborts on such an allocation instead of throwing
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
#endif

TEST_CASE("eval and predict skip an image whose body does not decode, say so, and never score a substitute") {
  test::TempDir tmp("e2e_skip_bad");
  test::make_shapes(tmp.path / "data", 1, 3, 16);
  const fs::path val = tmp.path / "data" / "val", broken_val = tmp.path / "broken_val";
  fs::copy(val, broken_val, fs::copy_options::recursive);
  put_truncated_png(first_class(broken_val));
  const fs::path model = model_with_metadata(tmp.path, "input_size", "16");
  const std::string tf = " --transforms center_crop=16,normalize=0.5:0.5:0.5/0.25:0.25:0.25 --threads 2 --batch 4";

  // eval: the broken image is left out, so the figures equal those of the folder without it.
  Run clean = run_rtune(tmp.path, fmt::format("eval --weights {} --data {} --json{}", model.string(), val.string(), tf));
  INFO(clean.err);
  REQUIRE(clean.rc == 0);
  Run ev = run_rtune(tmp.path, fmt::format("eval --weights {} --data {} --json{}", model.string(), broken_val.string(), tf));
  INFO(ev.err);
  REQUIRE(ev.rc == 0);
  auto a = nlohmann::json::parse(clean.out), b = nlohmann::json::parse(ev.out);
  CHECK(a["images"] == 12);
  CHECK(b["images"] == 12);
  CHECK(a["skipped"] == 0);
  CHECK(b["skipped"] == 1);
  CHECK(a["confusion"] == b["confusion"]);
  CHECK(a["loss"].get<double>() == doctest::Approx(b["loss"].get<double>()).epsilon(1e-6));  // other batch splits
  CHECK(ev.err.find("00-broken.png") != std::string::npos);
  CHECK(ev.err.find("skipped 1 image(s)") != std::string::npos);
  Run strict_eval = run_rtune(tmp.path, fmt::format("eval --strict --weights {} --data {}{}", model.string(),
                                                    broken_val.string(), tf));
  CHECK(is_one_line_refusal(strict_eval));
  CHECK(strict_eval.err.find("00-broken.png") != std::string::npos);

  // predict DIR: every other image is scored; the broken one is named in a warning and in the JSON.
  Run pr = run_rtune(tmp.path, fmt::format("predict --weights {} {} --json{}", model.string(), broken_val.string(), tf));
  INFO(pr.err);
  REQUIRE(pr.rc == 0);
  auto pj = nlohmann::json::parse(pr.out);
  CHECK(pj["predictions"].size() == 12);
  REQUIRE(pj["skipped"].size() == 1);
  CHECK(pj["skipped"][0]["path"].get<std::string>().find("00-broken.png") != std::string::npos);
  CHECK(pr.err.find("skipped 1 of 13 image(s)") != std::string::npos);
  for (auto& p : pj["predictions"]) CHECK(p["path"].get<std::string>().find("00-broken") == std::string::npos);
  // --strict keeps stopping at the first bad image; a run where no image decodes is an error.
  Run strict = run_rtune(tmp.path, fmt::format("predict --strict --weights {} {}{}", model.string(), broken_val.string(), tf));
  CHECK(is_one_line_refusal(strict));
  CHECK(strict.err.find("00-broken.png") != std::string::npos);
  Run none = run_rtune(tmp.path, fmt::format("predict --weights {} {}{}", model.string(),
                                             (first_class(broken_val) / "00-broken.png").string(), tf));
  CHECK(is_one_line_refusal(none));
  CHECK(none.err.find("none of the 1 image(s) could be decoded") != std::string::npos);
}

TEST_CASE("train: a thumbnail whose file does not decode is marked in report.html; every epoch and --resume go on") {
  test::TempDir tmp("e2e_report_bad");
  test::make_shapes(tmp.path / "data", 2, 1, 16);
  put_truncated_png(first_class(tmp.path / "data" / "train"));  // always among the report's thumbnails
  const fs::path run = tmp.path / "run";
  const std::string args = fmt::format(
      "train --data {} --out {} --arch resnet18 --pretrained none --width 4 --epochs 2 --batch 3 --threads 2 "
      "--transforms center_crop=16 --val-transforms center_crop=16 --no-progress --device cpu",
      (tmp.path / "data").string(), run.string());
  Run first = run_rtune(tmp.path, args + " --stop-after 1");
  INFO(first.out, first.err);
  REQUIRE(first.rc == 0);
  CHECK(first.err.find("00-broken.png") != std::string::npos);  // the loader's warning: replaced
  const std::string html = test::slurp(run / "report.html");
  CHECK(html.find("00-broken.png does not decode") != std::string::npos);
  CHECK(html.find("tile broken") != std::string::npos);
  Run resumed = run_rtune(tmp.path, "train --resume " + run.string() + " --no-progress");
  INFO(resumed.out, resumed.err);
  REQUIRE(resumed.rc == 0);
  CHECK(test::read_jsonl(run / "metrics.jsonl").size() == 2);
}

TEST_CASE("a loop of symbolic links in a data folder is a one-line error naming the link") {
  test::TempDir tmp("e2e_symlink_loop");
  test::make_shapes(tmp.path / "data", 1, 1, 16);
  const fs::path cls = first_class(tmp.path / "data" / "train");
  const fs::path model = model_with_metadata(tmp.path, "input_size", "16");
  // A link back to an enclosing folder (os.walk would descend into it forever) ...
  fs::create_directory_symlink(cls, cls / "again");
  for (const std::string cmd : {fmt::format("train --data {} --out {} --epochs 1 --width 4 --pretrained none",
                                            (tmp.path / "data").string(), (tmp.path / "o").string()),
                                fmt::format("eval --weights {} --data {}", model.string(), (tmp.path / "data" / "train").string()),
                                fmt::format("predict --weights {} {}", model.string(), (tmp.path / "data").string()),
                                fmt::format("bench loader --data {}", (tmp.path / "data" / "train").string())}) {
    CAPTURE(cmd);
    Run r = run_rtune(tmp.path, cmd);
    CAPTURE(r.err);
    CHECK(is_one_line_refusal(r));
    CHECK(r.err.find("again") != std::string::npos);
    CHECK(r.err.find("loop") != std::string::npos);
  }
  // ... and links that never resolve (a -> b -> a).
  fs::remove(cls / "again");
  fs::create_symlink(cls / "b", cls / "a");
  fs::create_symlink(cls / "a", cls / "b");
  Run r = run_rtune(tmp.path, fmt::format("eval --weights {} --data {}", model.string(), (tmp.path / "data" / "train").string()));
  CAPTURE(r.err);
  CHECK(is_one_line_refusal(r));
  CHECK(r.err.find("loop of symbolic links") != std::string::npos);
}

TEST_CASE("--out that cannot be created or written is a one-line error before any training") {
  test::TempDir tmp("e2e_bad_out");
  test::make_shapes(tmp.path / "data", 1, 1, 16);
  std::ofstream(tmp.path / "file") << "a regular file";
  const std::string args = fmt::format("train --data {} --epochs 1 --width 4 --pretrained none --image-size 16 --no-progress --out ",
                                       (tmp.path / "data").string());
  for (const fs::path out : {tmp.path / "file" / "run", fs::path("/proc/rtune-e2e-run"), fs::path("/sys/rtune-e2e-run")}) {
    CAPTURE(out);
    Run r = run_rtune(tmp.path, args + out.string());
    CAPTURE(r.err);
    CHECK(is_one_line_refusal(r));
    CHECK(r.err.find("--out " + out.string()) != std::string::npos);
    CHECK(r.out.find("epoch 1/1") == std::string::npos);
  }
}

#if !defined(__SANITIZE_ADDRESS__)  // AddressSanitizer aborts on such an allocation instead of throwing
TEST_CASE("sizes that cannot be allocated are one-line errors naming the flag and what to lower") {
  test::TempDir tmp("e2e_sizes");
  Run wide = run_rtune(tmp.path, "summary --arch resnet18 --width 1000000000");
  CAPTURE(wide.err);
  CHECK(is_one_line_refusal(wide));
  CHECK(wide.err.find("--width 1000000000") != std::string::npos);
  CHECK(wide.err.find("lower --width") != std::string::npos);
  Run batch = run_rtune(tmp.path, "bench train --arch resnet18 --batch 100000 --steps 1 --warmup 0");
  CAPTURE(batch.err);
  CHECK(is_one_line_refusal(batch));
  CHECK(batch.err.find("--batch 100000") != std::string::npos);
  CHECK(batch.err.find("lower --batch") != std::string::npos);
  Run infer = run_rtune(tmp.path, "bench infer --arch resnet18 --batch 100000 --steps 1 --warmup 0");
  CAPTURE(infer.err);
  CHECK(is_one_line_refusal(infer));
  CHECK(infer.err.find("--batch 100000") != std::string::npos);
}
#endif

TEST_CASE("--threads / --compute-threads below 0 or above 1024 is a usage error for every command that has them") {
  test::TempDir tmp("e2e_threads");
  test::make_shapes(tmp.path / "data", 1, 1, 16);
  const std::string w = (tmp.path / "w.safetensors").string();
  std::ofstream(w) << "not read: the flags are refused first";
  for (const std::string cmd : {"train --data " + (tmp.path / "data").string() + " --out " + (tmp.path / "o").string() +
                                    " --threads -5",
                                "eval --weights " + w + " --data " + (tmp.path / "data").string() + " --threads -1",
                                "predict --weights " + w + " y --threads -2", std::string("bench loader --data x --threads -3"),
                                std::string("demo --threads -4"), std::string("train --data x --out y --threads 100000"),
                                std::string("bench train --compute-threads -6"), std::string("bench infer --compute-threads 2000"),
                                std::string("train --data x --out y --compute-threads -7")}) {
    CAPTURE(cmd);
    Run r = run_rtune(tmp.path, cmd);
    CAPTURE(r.err);
    CHECK(r.rc >= 100);  // CLI11's usage errors
    CHECK(r.rc <= 120);
    CHECK(r.err.find("threads") != std::string::npos);  // --threads or --compute-threads
  }
  CHECK_FALSE(fs::exists(tmp.path / "o" / "last.ckpt"));
}
