// Checkpoint files: round trip (tensors and state exact), and atomicity: a write that fails half-way
// (injected error, or the writing process killed mid-write) never replaces the good checkpoint and
// leaves no temp file when it can clean up.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>
#include "io/formats/checkpoint.h"
#include "tests/core/test_util.h"
#include "tests/train/train_test_util.h"

using namespace rtune;
namespace fs = std::filesystem;

namespace {
io::Checkpoint sample(double v, int64_t n = 300000) {
  io::Checkpoint ck;
  ck.tensors.emplace_back("model.w", full({n}, v));
  ck.tensors.emplace_back("optim.0.0.exp_avg", from_vector({1.0 / 3, -2.5}, {2}, DType::f64));
  ck.tensors.emplace_back("model.bn.num_batches_tracked", from_vector_i64({7}, {}));
  ck.state = {{"epoch", 3}, {"lr", 0.1 / 3}, {"note", "π"}};
  return ck;
}
size_t temp_files(const fs::path& dir) {
  size_t n = 0;
  for (auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().find(".tmp-") != std::string::npos;
  return n;
}
}  // namespace

TEST_CASE("checkpoint round trip: tensors, dtypes and JSON state exact") {
  test::TempDir dir("ckpt_roundtrip");
  io::save_checkpoint(dir.path / "c.ckpt", sample(1.5));
  io::Checkpoint ck = io::load_checkpoint(dir.path / "c.ckpt");
  REQUIRE(ck.find("model.w"));
  CHECK(ck.find("model.w")->to_vector<float>() == std::vector<float>(300000, 1.5f));
  CHECK(ck.find("optim.0.0.exp_avg")->to_vector<double>() == std::vector<double>{1.0 / 3, -2.5});
  CHECK(ck.find("model.bn.num_batches_tracked")->item<int64_t>() == 7);
  CHECK(ck.state["lr"].get<double>() == 0.1 / 3);
  CHECK(ck.state["note"] == "π");
  CHECK(temp_files(dir.path) == 0);
}

TEST_CASE("a failed write never replaces the good checkpoint") {
  test::TempDir dir("ckpt_atomic");
  const fs::path p = dir.path / "last.ckpt";
  io::save_checkpoint(p, sample(1.0));
  const auto good_size = fs::file_size(p);

  SUBCASE("an error injected half-way through the bytes") {
    io::AtomicWriteHooks h;
    h.chunk_bytes = 4096;
    h.before_chunk = [](size_t written, size_t total) {
      if (written >= total / 2) throw Error("injected: disk full");
    };
    CHECK_THROWS_WITH_AS(io::save_checkpoint(p, sample(2.0), h), "injected: disk full", Error);
    CHECK(temp_files(dir.path) == 0);  // the partial temp file was removed
  }
  SUBCASE("the writing process dies half-way (no cleanup runs)") {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      io::AtomicWriteHooks h;
      h.chunk_bytes = 4096;
      h.before_chunk = [](size_t written, size_t total) {
        if (written >= total / 2) _exit(42);
      };
      io::save_checkpoint(p, sample(2.0), h);
      _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 42);
    CHECK(temp_files(dir.path) == 1);  // a crash leaves its temp file; the target is untouched
  }
  SUBCASE("the folder cannot be written (target path is a directory)") {
    fs::create_directories(dir.path / "sub" / "last.ckpt" / "x");
    CHECK_THROWS_AS(io::save_checkpoint(dir.path / "sub" / "last.ckpt", sample(2.0)), Error);
    CHECK(fs::exists(dir.path / "sub" / "last.ckpt" / "x"));
  }
  CHECK(fs::file_size(p) == good_size);
  io::Checkpoint ck = io::load_checkpoint(p);
  CHECK(ck.find("model.w")->to_vector<float>() == std::vector<float>(300000, 1.0f));
  CHECK(ck.state["epoch"] == 3);
}

TEST_CASE("load_checkpoint rejects files that are not rtune checkpoints") {
  test::TempDir dir("ckpt_reject");
  CHECK_THROWS_AS(io::load_checkpoint(dir.path / "missing.ckpt"), Error);
  CHECK_THROWS_WITH_AS(io::load_checkpoint(test::fixture("tiny_resnet18.safetensors")),
                       doctest::Contains("not an rtune training checkpoint"), Error);
}
