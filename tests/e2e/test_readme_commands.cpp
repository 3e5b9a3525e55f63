// Every `rtune …` command in README.md's ```sh blocks runs as written, in README order, in one folder
// that holds the data each names (generated here): a README edit that breaks a command fails this test.
//
// The data: imgs/ (an ImageFolder without a split), flowers102/ (12 class folders "1".."12" with
// train/ and val/, which ImageFolder sorts as text) beside cat_to_name.json keyed by folder, cifar/
// (32x32), four_classes/, data/ (list files and names.txt), photo.jpg and some_flower.jpg. The
// torchvision weights the README names are the tiny fixture ResNets (tests/fixtures: torchvision's own
// layout and names, base width 8) saved under torchvision's file names: at the README's 224 px a
// width-8 ResNet costs 1/64 of a real one's FLOPs, so every command runs at its own image size and
// epoch count with no flag added (an ImageNet download is impossible here and far too slow on 2 cores).
//
// In the simulated-device build the commands run with CUDA_VISIBLE_DEVICES set and empty: the
// simulated GPU then reports no device, as a real runtime does, and `--device auto` (the README's
// default) picks the CPU as on CI's GPU-less machine. The simulated device runs each kernel on host
// fibers (~10x slower than the CPU path); the CUDA path has its own end-to-end test in test_cli.cpp.
#include <doctest/doctest.h>
#include <fstream>
#include <set>
#include <nlohmann/json.hpp>
#include "finetune/synthetic.h"
#include "io/image/png_write.h"
#include "tests/core/test_util.h"
#include "tests/data/jpeg_test_files.h"
#include "tests/e2e/cli_run.h"
#include "tests/e2e/readme_commands.h"
#if defined(RTUNE_TEST_HAS_CUDA)
#include "kernels/cuda/runtime.h"
#endif

using namespace rtune;
namespace fs = std::filesystem;
namespace synth = finetune::synth;

namespace {

// The only flags this test adds, each to the one README command that holds the words `match`. They cut time
// and change no meaning; the rest of every command is exactly as written.
struct Cut {
  std::string match, append, why;
  int used = 0;
};
std::vector<Cut> cuts() {
  return {
      {"--arch resnet50 --pretrained none", "--stop-after 1",
       "from scratch means a full-width ResNet-50 at 224 px (~10 s per epoch of 12 images on 2 cores, 10 epochs): "
       "one epoch runs the same recipe (onecycle, clip-value, wd) and leaves the run resumable"},
      {"bench train --arch resnet50 --batch 32", "--warmup 0 --steps 1 --input 64",
       "one step of full-width ResNet-50 at batch 32 and 224 px took 44 s on 2 shared cores; the same arch, batch "
       "and device at 64 px, one timed step, measure the same code path"},
      {"bench infer --arch resnet50 --batch 32", "--warmup 0 --steps 1 --input 64",
       "as bench train: the same arch, batch and device at 64 px, one timed forward pass"},
  };
}

bool gpu_present() {
#if defined(RTUNE_TEST_HAS_CUDA)
  return cuda::rt::device_count() > 0;
#else
  return false;
#endif
}

void write_jpeg(const fs::path& p, const io::Image& img) {
  const auto bytes = test::encode_jpeg(img, {});
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

// `per_split` images per class in root/<split>/<folder>/, drawn from the shapes task.
void shape_folders(const fs::path& root, const std::vector<std::string>& folders,
                   const std::vector<std::pair<std::string, int>>& per_split, int size) {
  uint64_t index = 0;
  for (const auto& [split, n] : per_split)
    for (size_t k = 0; k < folders.size(); ++k) {
      const fs::path dir = split.empty() ? root / folders[k] : root / split / folders[k];
      fs::create_directories(dir);
      for (int i = 0; i < n; ++i)
        io::write_png(dir / fmt::format("{:04d}.png", i), synth::render(synth::Task::shapes, int(k % 4), size, 3, index++));
    }
}

// The Oxford 102 Flowers names of classes 1..12, keyed by folder as the tutorial's cat_to_name.json.
const std::vector<std::string> kFlowerNames = {
    "pink primrose", "hard-leaved pocket orchid", "canterbury bells", "sweet pea", "english marigold", "tiger lily",
    "moon orchid",   "bird of paradise",          "monkshood",        "globe thistle", "snapdragon", "colt's foot"};
const std::vector<std::string> kFourClasses = {"ants", "bees", "cats", "dogs"};
const std::vector<std::string> kListNames = {"round thing", "square thing", "pointy thing"};

void make_readme_world(const fs::path& root) {
  const fs::path fixtures = fs::path(RTUNE_SOURCE_DIR) / "tests/fixtures";
  fs::copy_file(fixtures / "tiny_resnet18.pth", root / "resnet18-f37072fd.pth");
  fs::copy_file(fixtures / "tiny_resnet50.pth", root / "resnet50-0676ba61.pth");

  synth::write_image_folder(root / "imgs", synth::Task::families, 5, 48, 1);  // 15 images: 12 train / 3 val
  std::vector<std::string> flowers;
  nlohmann::json cat_to_name;
  for (int i = 1; i <= 12; ++i) {
    flowers.push_back(std::to_string(i));
    cat_to_name[std::to_string(i)] = kFlowerNames[size_t(i - 1)];
  }
  shape_folders(root / "flowers102", flowers, {{"train", 2}, {"val", 1}}, 48);
  std::ofstream(root / "cat_to_name.json") << cat_to_name.dump(1);
  shape_folders(root / "cifar", {"bird", "car", "cat", "plane"}, {{"train", 3}, {"val", 2}}, 32);
  shape_folders(root / "four_classes", kFourClasses, {{"train", 3}, {"val", 2}}, 48);

  // List files: "relative/path label" lines, paths relative to the list's folder.
  fs::create_directories(root / "data" / "images");
  uint64_t index = 100;
  for (const auto& [split, n] : {std::pair<std::string, int>{"train", 4}, {"val", 2}}) {
    std::ofstream list(root / "data" / (split + ".txt"));
    for (int label = 0; label < 3; ++label)
      for (int i = 0; i < n; ++i) {
        const std::string rel = fmt::format("images/{}_{}_{}.png", split, label, i);
        io::write_png(root / "data" / rel, synth::render(synth::Task::shapes, label, 40, 4, index++));
        list << rel << ' ' << label << '\n';
      }
  }
  std::ofstream names(root / "data" / "names.txt");
  for (const auto& n : kListNames) names << n << '\n';

  write_jpeg(root / "photo.jpg", synth::render(synth::Task::shapes, 2, 64, 5, 0));
  write_jpeg(root / "some_flower.jpg", synth::render(synth::Task::shapes, 1, 64, 5, 1));
}

std::string flag_value(const std::string& args, const std::string& flag) {
  std::istringstream in(args);
  for (std::string w; in >> w;)
    if (w == flag && in >> w) return w;
  return "";
}

// What each kind of command must leave behind, beyond exit code 0.
void check_outcome(const fs::path& root, const std::string& args, const test::Run& r) {
  CHECK(r.err.find("error") == std::string::npos);
  if (args.starts_with("train")) {
#if defined(RTUNE_TEST_CUDA_SIM)
    CHECK(r.out.find("device: cpu (auto: no CUDA GPU found, using the CPU") != std::string::npos);
#endif
    const std::string out = args.find("--resume") != std::string::npos ? flag_value(args, "--resume") : flag_value(args, "--out");
    REQUIRE(!out.empty());
    CHECK(fs::exists(root / out / "best.safetensors"));
    CHECK(fs::exists(root / out / "report.html"));
    const auto epochs = test::read_jsonl(root / out / "metrics.jsonl");
    const std::string stop = flag_value(args, "--stop-after"), want = stop.empty() ? flag_value(args, "--epochs") : stop;
    if (!want.empty()) CHECK(epochs.size() == std::stoul(want));
  } else if (args.starts_with("predict") && args.find("--json") != std::string::npos) {
    // The README's --json predict is the four-class run's: every class, by index, with its folder name.
    const auto j = nlohmann::json::parse(r.out);
    REQUIRE(j["predictions"].size() == 1);
    const auto& top = j["predictions"][0]["top"];
    CHECK(j["predictions"][0]["path"] == "photo.jpg");
    REQUIRE(top.size() == kFourClasses.size());
    for (const auto& t : top) CHECK(t["name"] == kFourClasses.at(t["class"].get<size_t>()));
  } else if (args.starts_with("predict")) {
    // Text: "some_flower.jpg: NAME SCORE, NAME SCORE, …", the names cat_to_name.json gave the folders.
    REQUIRE(r.out.starts_with("some_flower.jpg: "));
    const std::string topk = flag_value(args, "--topk");
    size_t listed = 0;
    for (const auto& name : kFlowerNames)
      listed += r.out.find(": " + name + " ") != std::string::npos || r.out.find(", " + name + " ") != std::string::npos;
    CHECK(listed == std::stoul(topk.empty() ? "1" : topk));
  } else if (args.starts_with("eval")) {
    CHECK(r.out.find("on 8 images") != std::string::npos);
    for (const auto& name : kFourClasses) CHECK(r.out.find(name) != std::string::npos);
  } else if (args.starts_with("summary")) {
    CHECK(r.out.find("input 3x224x224") != std::string::npos);
    CHECK(r.out.find("MACs per image") != std::string::npos);
  } else if (args.starts_with("demo")) {
    CHECK(fs::exists(root / "rtune-demo" / "report.html"));
  } else if (args.starts_with("convert")) {
    CHECK(fs::exists(root / "resnet18.safetensors"));
  } else if (args.starts_with("bench loader")) {
    const auto j = nlohmann::json::parse(r.out.substr(r.out.rfind("\n{") + 1));
    CHECK(j["images"] == 15);
    CHECK(j["train_img_s"].get<double>() > 0);  // one batch: timed from the epoch's start
    CHECK(j["cached_img_s"].get<double>() > 0);
  } else if (args.starts_with("bench train") || args.starts_with("bench infer")) {
    CHECK(r.out.find("img/s") != std::string::npos);
  }
}

}  // namespace

TEST_CASE("readme_rtune_commands: sh blocks only, comments dropped, continuations joined, && chains split") {
  const std::string md =
      "Text mentioning rtune train --data x.\n"
      "```sh\n"
      "# a comment line\n"
      "make && ./build/rtune demo && echo rtune\n"
      "rtune train --data a/ \\\n"
      "    --epochs 2   # trailing comment\n"
      "rtune predict --weights m#1.safetensors x.jpg\n"
      "```\n"
      "```\n"
      "rtune eval --data not/a/sh/block\n"
      "```\n";
  const auto c = test::readme_rtune_commands(md);
  REQUIRE(c.size() == 3);
  CHECK(c[0].args == "demo");
  CHECK(c[0].line == 4);
  CHECK(c[1].args == "train --data a/ --epochs 2");
  CHECK(c[1].line == 5);
  CHECK(c[2].args == "predict --weights m#1.safetensors x.jpg");
}

TEST_CASE("every rtune command in README.md runs as written on the data it names") {
  const std::string readme = test::slurp(fs::path(RTUNE_SOURCE_DIR) / "README.md");
  const auto commands = test::readme_rtune_commands(readme);
  REQUIRE(commands.size() >= 10);
  test::TempDir tmp("e2e_readme");
  const fs::path root = tmp.path / "w", logs = tmp.path / "logs";
  fs::create_directories(root);
  fs::create_directories(logs);
  make_readme_world(root);
  auto cut_list = cuts();
  for (const auto& c : commands) {
    std::string args = c.args;
    for (auto& cut : cut_list)
      if ((" " + args + " ").find(" " + cut.match + " ") != std::string::npos) {
        ++cut.used;
        args += " " + cut.append;
        MESSAGE("README.md:" << c.line << ": appended " << cut.append << " (" << cut.why << ")");
      }
    CAPTURE(c.line);
    CAPTURE(args);
    const bool names_gpu = args.find("--device cuda") != std::string::npos;
    if (names_gpu && !gpu_present()) {
      MESSAGE("README.md:" << c.line << ": skipped (needs a CUDA GPU): rtune " << args);
      continue;
    }
    std::string prefix = "cd " + root.string() + " &&";
#if defined(RTUNE_TEST_CUDA_SIM)
    if (!names_gpu) prefix += " CUDA_VISIBLE_DEVICES=";
#endif
    const test::Run r = test::run_rtune(logs, args, prefix);
    INFO(r.out);
    INFO(r.err);
    CHECK(r.rc == 0);
    if (r.rc == 0) check_outcome(root, args, r);
  }
  for (const auto& cut : cut_list) CHECK_MESSAGE(cut.used == 1, "the cut for '" << cut.match << "' matched " << cut.used << " commands");
}
