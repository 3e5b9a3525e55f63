// A training run killed with SIGKILL at any instant leaves a run folder that the next start repairs
// (tools/lib/run_folder.h): kills at each step of the end-of-epoch writes (through the
// RTUNE_TEST_KILL_AT hook) and at random times; after the last --resume the folder holds no temp
// file, metrics and report cover every epoch, and every result equals an uninterrupted run's bit for bit.
#include <doctest/doctest.h>
#include <algorithm>
#include <chrono>
#include <random>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include "io/formats/checkpoint.h"
#include "finetune/run_folder.h"
#include "io/formats/safetensors.h"
#include "tests/core/test_util.h"
#include "tests/e2e/cli_run.h"
#include "tests/train/train_test_util.h"

using namespace rtune;
namespace fs = std::filesystem;
using test::Run;
using test::run_rtune;

namespace {

constexpr int kEpochs = 3;

std::string train_args(const fs::path& data, const fs::path& out) {
  return fmt::format("train --data {} --out {} --arch resnet18 --pretrained none --width 4 --epochs {} --batch 4 "
                     "--opt sgd --lr 0.05 --sched cosine --transforms random_crop=16:pad=2,hflip --val-transforms "
                     "center_crop=16 --seed 3 --threads 2 --no-progress --device cpu",
                     data.string(), out.string(), kEpochs);
}

// The next command for a killed folder: resume when an epoch was committed, else start afresh.
std::string continue_args(const fs::path& data, const fs::path& out) {
  return fs::exists(out / "last.ckpt") ? "train --resume " + out.string() + " --no-progress" : train_args(data, out);
}

bool killed(const Run& r) { return r.rc == -1 || r.rc == 137; }  // by the signal itself, or through `timeout`

// No temp or pending file; metrics.jsonl / .csv hold exactly the checkpoint's epochs, steps.csv its
// steps, confusion.json its best epoch; report.html lists the last of them.
void check_consistent(const fs::path& run) {
  for (auto& e : fs::directory_iterator(run)) {
    const std::string n = e.path().filename().string();
    CAPTURE(n);
    CHECK(n.find(".tmp") == std::string::npos);
    CHECK(n.find("pending") == std::string::npos);
  }
  io::Checkpoint ck = io::load_checkpoint(run / "last.ckpt");
  const auto& history = ck.state.at("history");
  const int64_t epoch = ck.state.at("epoch").get<int64_t>();
  auto rows = test::read_jsonl(run / "metrics.jsonl");
  REQUIRE(int64_t(rows.size()) == epoch);
  for (size_t i = 0; i < rows.size(); ++i) CHECK(rows[i] == history.at(i));
  const std::string csv = test::slurp(run / "metrics.csv");
  CHECK(std::count(csv.begin(), csv.end(), '\n') == epoch + 1);
  const std::string steps = test::slurp(run / "steps.csv");
  CHECK(size_t(std::count(steps.begin(), steps.end(), '\n')) == ck.state.at("steps").at("loss").size() + 1);
  REQUIRE(ck.state.contains("best_eval"));
  CHECK(nlohmann::json::parse(test::slurp(run / "confusion.json"))["epoch"] == ck.state.at("best_epoch"));
  const std::string html = test::slurp(run / "report.html");
  CHECK((html.find(fmt::format("<tr><td>{}</td>", epoch)) != std::string::npos ||
         html.find(fmt::format("<tr><td>{} ★</td>", epoch)) != std::string::npos));
  CHECK(html.find(fmt::format("<tr><td>{}</td>", epoch + 1)) == std::string::npos);
  CHECK(html.find("Confusion matrix") != std::string::npos);
  CHECK(fs::exists(run / "best.safetensors"));
}

// Both runs' results: every epoch's metrics, and the model and optimizer state byte for byte.
void check_same_run(const fs::path& a, const fs::path& b) {
  auto ra = test::read_jsonl(a / "metrics.jsonl"), rb = test::read_jsonl(b / "metrics.jsonl");
  REQUIRE(ra.size() == size_t(kEpochs));
  REQUIRE(rb.size() == size_t(kEpochs));
  for (size_t i = 0; i < ra.size(); ++i)
    for (const char* k : {"train_loss", "train_top1", "val_loss", "val_top1", "lr", "best"}) {
      CAPTURE(i);
      CAPTURE(k);
      CHECK(ra[i][k] == rb[i][k]);
    }
  CHECK(test::slurp(a / "steps.csv") == test::slurp(b / "steps.csv"));
  CHECK(test::slurp(a / "confusion.json") == test::slurp(b / "confusion.json"));
  for (const char* f : {"last.ckpt", "best.safetensors"}) {
    CAPTURE(f);
    io::SafetensorsFile fa = io::SafetensorsFile::open(a / f), fb = io::SafetensorsFile::open(b / f);
    REQUIRE(fa.tensors().size() == fb.tensors().size());
    for (const auto& v : fa.tensors()) {
      CAPTURE(v.name);
      const auto* w = fb.find(v.name);
      REQUIRE(w);
      CHECK(std::equal(v.bytes.begin(), v.bytes.end(), w->bytes.begin(), w->bytes.end()));
    }
  }
}

}  // namespace

TEST_CASE("a killed write of every file the run folder holds leaves a temp file that resume removes") {
  for (const char* f : {"last.ckpt", "metrics.jsonl", "metrics.csv", "steps.csv", "confusion.json", "report.html",
                        "best.safetensors", "best.pending-epoch-3.safetensors"}) {
    CAPTURE(f);
    CHECK(finetune::is_run_temp_file(fmt::format("{}.tmp-4242", f)));    // write_file_atomic's
    CHECK(finetune::is_run_temp_file(fmt::format(".{}.tmpA1b2C3", f)));  // write_safetensors'
  }
  CHECK_FALSE(finetune::is_run_temp_file("photo.jpg.tmp-12"));  // a user's file is never removed
  CHECK_FALSE(finetune::is_run_temp_file("steps.csv"));
}

TEST_CASE("SIGKILL at each end-of-epoch write, then --resume: a consistent folder and the uninterrupted run's results") {
  test::TempDir tmp("e2e_kill_points");
  const fs::path data = tmp.path / "data";
  test::make_shapes(data, 2, 1, 16);
  Run full = run_rtune(tmp.path, train_args(data, tmp.path / "full"));
  INFO(full.out, full.err);
  REQUIRE(full.rc == 0);
  check_consistent(tmp.path / "full");

  const fs::path run = tmp.path / "killed";
  // Each kill lands in another window of the write sequence (tools/lib/run_folder.h).
  const char* kills[] = {
      "ckpt-write@1",  // half-way through the first checkpoint: a temp file, a pending best model, no last.ckpt
      "best@1",        // the new start: pending best model written, checkpoint not
      "ckpt@1",        // checkpoint committed, best model not yet promoted, no metrics
      "promote@2",     // best promoted (or none), metrics one epoch behind
      "metrics@3",     // the last epoch: metrics written, report.html stale
  };
  for (const char* k : kills) {
    CAPTURE(k);
    Run r = run_rtune(tmp.path, continue_args(data, run), fmt::format("RTUNE_TEST_KILL_AT={}", k));
    CAPTURE(r.out);
    CAPTURE(r.err);
    REQUIRE(killed(r));
    if (std::string(k) == "ckpt-write@1") {
      bool temp = false;
      for (auto& e : fs::directory_iterator(run)) temp |= e.path().filename().string().find("last.ckpt.tmp-") == 0;
      CHECK(temp);  // the kill did leave what the next start must clean up
      CHECK_FALSE(fs::exists(run / "last.ckpt"));
    }
  }
  // Every epoch is committed: the resume runs none (so reaches no kill point) and repairs the report.
  Run last = run_rtune(tmp.path, continue_args(data, run), "RTUNE_TEST_KILL_AT=ckpt@3");
  INFO(last.out, last.err);
  REQUIRE(last.rc == 0);
  check_consistent(run);
  check_same_run(tmp.path / "full", run);
}

TEST_CASE("the last epoch killed between its checkpoint and its metrics: --resume says done and repairs the folder") {
  test::TempDir tmp("e2e_kill_last");
  const fs::path data = tmp.path / "data";
  test::make_shapes(data, 2, 1, 16);
  const fs::path run = tmp.path / "run";
  Run r = run_rtune(tmp.path, train_args(data, run), fmt::format("RTUNE_TEST_KILL_AT=ckpt@{}", kEpochs));
  REQUIRE(killed(r));
  REQUIRE(test::read_jsonl(run / "metrics.jsonl").size() == size_t(kEpochs - 1));
  Run done = run_rtune(tmp.path, "train --resume " + run.string() + " --no-progress");
  INFO(done.out, done.err);
  REQUIRE(done.rc == 0);
  CHECK(done.out.find("done") != std::string::npos);
  check_consistent(run);
}

TEST_CASE("SIGKILL at random times, then --resume until done: the uninterrupted run's results, no temp file left") {
  test::TempDir tmp("e2e_kill_random");
  const fs::path data = tmp.path / "data";
  test::make_shapes(data, 2, 1, 16);
  const auto t0 = std::chrono::steady_clock::now();
  Run full = run_rtune(tmp.path, train_args(data, tmp.path / "full"));
  REQUIRE(full.rc == 0);
  // Kill times are drawn over the uninterrupted run's duration, so that they land inside a run on
  // a fast or a slow machine alike (nothing here depends on where they land).
  const int run_ms = std::max(20, int(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - t0).count()));
  const fs::path run = tmp.path / "killed";
  std::mt19937 rng(21);
  std::uniform_int_distribution<int> ms(1, run_ms);
  int landed = 0;
  for (int k = 0; k < 8; ++k) {
    const int t = ms(rng);
    CAPTURE(t);
    Run r = run_rtune(tmp.path, continue_args(data, run), fmt::format("timeout -s KILL {}.{:03d}", t / 1000, t % 1000));
    if (r.rc == 0) continue;  // finished before the kill (a resume of a done run is quick)
    CHECK(killed(r));
    ++landed;
  }
  MESSAGE(landed << " of 8 kills landed inside a run (" << run_ms << " ms uninterrupted)");
  Run rest = run_rtune(tmp.path, continue_args(data, run));
  INFO(rest.out, rest.err);
  REQUIRE(rest.rc == 0);
  if (rest.out.find("resuming") == std::string::npos) MESSAGE("every kill landed before the first checkpoint");
  check_consistent(run);
  check_same_run(tmp.path / "full", run);
}
