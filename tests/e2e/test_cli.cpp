// End to end through the `rtune` binary: train on a generated 4-shape dataset and reach a stated
// accuracy; eval agrees with training's validation; predict --json conforms to its schema; a run
// stopped and resumed (with the decoded-image cache on in two of its parts) equals an uninterrupted one
// bit for bit, steps.csv and confusion.json included; bad arguments are usage errors; and
// --device cuda is a clear error (never a silent CPU run) in a build without CUDA.
#include <doctest/doctest.h>
#include <cstdlib>
#include <algorithm>
#include <fstream>
#include <set>
#include <thread>
#include <sstream>
#include <sys/wait.h>
#include <nlohmann/json.hpp>
#include "finetune/synthetic.h"
#include "kernels/cpu/backend.h"
#include "kernels/ops.h"
#include "io/formats/checkpoint.h"
#include "io/formats/safetensors.h"
#include "io/image/png_write.h"
#include "finetune/weights.h"
#include "tests/e2e/cli_run.h"
#include "tests/e2e/json_schema.h"
#include "tests/train/train_test_util.h"
#if defined(RTUNE_TEST_HAS_CUDA)
#include "kernels/cuda/runtime.h"
#endif

using namespace rtune;
namespace fs = std::filesystem;

namespace {
using test::Run;
using test::read_jsonl;
using test::run_rtune;
using test::slurp;

const std::string kNorm = "normalize=0.5:0.5:0.5/0.25:0.25:0.25";
std::string recipe(int size) {
  return fmt::format("--arch resnet18 --pretrained none --opt adam --lr 3e-3 --sched cosine --batch 32 --threads 2 "
                     "--transforms random_crop={}:pad=2,hflip,{} --val-transforms center_crop={},{} --no-progress "
                     "--device cpu",  // bit-exact resume is a CPU promise; the CUDA path has its own test
                     size, kNorm, size, kNorm);
}

// Every tensor of two safetensors files (model, optimizer state), byte for byte.
void check_same_model(const fs::path& a, const fs::path& b) {
  io::SafetensorsFile fa = io::SafetensorsFile::open(a), fb = io::SafetensorsFile::open(b);
  size_t n = 0;
  for (const auto& v : fa.tensors()) {
    CAPTURE(v.name);
    const auto* w = fb.find(v.name);
    REQUIRE(w);
    CHECK(std::equal(v.bytes.begin(), v.bytes.end(), w->bytes.begin(), w->bytes.end()));
    ++n;
  }
  CHECK(n == fb.tensors().size());
  CHECK(n > 100);
}
// predict --json with --topk = the class count, on `images` in that order: one prediction per image,
// each listing every class by index with the name the model file gives it (`names`: the class folders,
// or the --classes display names, in the folders' or the list's label order).
void check_predicted_names(const Run& pr, const std::vector<fs::path>& images, const std::vector<std::string>& names) {
  INFO(pr.err);
  REQUIRE(pr.rc == 0);
  const auto j = nlohmann::json::parse(pr.out);
  CHECK(j["num_classes"] == names.size());
  REQUIRE(j["predictions"].size() == images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    const auto& p = j["predictions"][i];
    CAPTURE(images[i]);
    CHECK(p["path"] == images[i].string());
    REQUIRE(p["top"].size() == names.size());
    std::set<std::string> seen;
    for (const auto& t : p["top"]) {
      CHECK(t["name"] == names.at(t["class"].get<size_t>()));
      seen.insert(t["name"].get<std::string>());
    }
    CHECK(seen == std::set<std::string>(names.begin(), names.end()));
  }
}

// `rtune predict --weights MODEL --json --topk K IMAGE…`
Run predict_json(const fs::path& tmp, const fs::path& model, const std::vector<fs::path>& images, size_t topk) {
  std::string files;
  for (const auto& f : images) files += " " + f.string();
  return run_rtune(tmp, fmt::format("predict --weights {} --json --topk {} --threads 2 --device cpu{}", model.string(), topk, files));
}

}  // namespace

TEST_CASE("train -> eval -> predict on generated shapes: val top-1 >= 40% after 8 epochs (chance 25%)") {
  test::TempDir tmp("e2e_train");
  test::make_shapes(tmp.path / "data", 150, 25, 32);
  const fs::path run = tmp.path / "run";
  Run r = run_rtune(tmp.path, fmt::format("train --data {} --width 16 --epochs 8 --seed 1 --out {} {}",
                                      (tmp.path / "data").string(), run.string(), recipe(32)));
  INFO(r.out, r.err);
  REQUIRE(r.rc == 0);
  for (const char* f : {"best.safetensors", "last.ckpt", "metrics.jsonl", "metrics.csv", "steps.csv", "confusion.json",
                        "report.html"})
    CHECK_MESSAGE(fs::exists(run / f), f);
  auto epochs = read_jsonl(run / "metrics.jsonl");
  REQUIRE(epochs.size() == 8);
  double best = 0;
  int64_t best_epoch = 0;
  for (auto& e : epochs)
    if (e["val_top1"].get<double>() > best) best = e["val_top1"], best_epoch = e["epoch"];
  // Measured: 48% at this seed (PyTorch with the same data and recipe lands in the same range).
  CHECK(best >= 0.40);
  CHECK(epochs.back()["train_loss"].get<double>() < 0.7 * epochs.front()["train_loss"].get<double>());
  CHECK(slurp(run / "metrics.csv").find("epoch,phase,train_loss,train_top1,val_loss,val_top1,val_top5") == 0);
  // steps.csv: a header and one row per step (600 images / batch 32 = 19 steps an epoch).
  const std::string steps = slurp(run / "steps.csv");
  CHECK(steps.rfind("step,epoch,loss,lr_backbone,lr_head\n", 0) == 0);
  CHECK(std::count(steps.begin(), steps.end(), '\n') == 1 + 8 * 19);
  CHECK(steps.find("\n152,8,") != std::string::npos);
  // confusion.json is the best epoch's: its diagonal over its count is that epoch's val top-1.
  auto cm = nlohmann::json::parse(slurp(run / "confusion.json"));
  CHECK(cm["epoch"] == best_epoch);
  CHECK(cm["classes"] == nlohmann::json({"circle", "cross", "square", "triangle"}));
  int64_t diag = 0, total = 0;
  for (size_t t = 0; t < 4; ++t)
    for (size_t p = 0; p < 4; ++p) total += cm["matrix"][t][p].get<int64_t>(), diag += t == p ? cm["matrix"][t][p].get<int64_t>() : 0;
  CHECK(total == 100);
  CHECK(double(diag) / 100 == best);
  CHECK(r.out.find("report:") != std::string::npos);

  // The report is self-contained: charts inline, images as data URIs, nothing fetched.
  const std::string html = slurp(run / "report.html");
  CHECK(html.find("<svg") != std::string::npos);
  CHECK(html.find(fmt::format("Confusion matrix (best checkpoint, epoch {})", best_epoch)) != std::string::npos);
  CHECK(html.find("src=\"data:image/png;base64,") != std::string::npos);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("src=\"http") == std::string::npos);
  CHECK(html.find("href=\"http") == std::string::npos);

  // eval with the training's validation transforms reproduces the best epoch's validation top-1.
  Run ev = run_rtune(tmp.path, fmt::format("eval --weights {} --data {} --transforms center_crop=32,{} --json --threads 2",
                                       (run / "best.safetensors").string(), (tmp.path / "data" / "val").string(), kNorm));
  INFO(ev.err);
  REQUIRE(ev.rc == 0);
  auto ej = nlohmann::json::parse(ev.out);
  CHECK(ej["images"] == 100);
  CHECK(ej["top1"].get<double>() == doctest::Approx(best).epsilon(1e-12));
  CHECK(ej["per_class"].size() == 4);
  CHECK(ej["confusion"].size() == 4);
  CAPTURE(best_epoch);

  // predict --json: schema, class names from the model file, scores sorted and summing to <= 1.
  Run pr = run_rtune(tmp.path, fmt::format("predict --weights {} {} --topk 3 --json --threads 2",
                                       (run / "best.safetensors").string(), (tmp.path / "data" / "val" / "cross").string()));
  INFO(pr.err);
  REQUIRE(pr.rc == 0);
  auto pj = nlohmann::json::parse(pr.out);
  auto schema = nlohmann::json::parse(slurp(fs::path(RTUNE_SOURCE_DIR) / "tests/e2e/predict.schema.json"));
  CHECK(test::validate_json(pj, schema) == "");
  REQUIRE(pj["predictions"].size() == 25);
  const std::vector<std::string> names{"circle", "cross", "square", "triangle"};  // ImageFolder: sorted
  for (auto& p : pj["predictions"]) {
    REQUIRE(p["top"].size() == 3);
    double sum = 0, prev = 1;
    for (auto& t : p["top"]) {
      CHECK(t["name"] == names.at(t["class"].get<size_t>()));
      CHECK(t["score"].get<double>() <= prev);
      prev = t["score"], sum += prev;
    }
    CHECK(sum <= 1.0 + 1e-9);
  }
  // The schema check itself rejects a malformed document.
  pj["predictions"][0]["top"][0]["score"] = 1.5;
  CHECK(test::validate_json(pj, schema) != "");

  // Plain text output names the file and the class.
  Run pt = run_rtune(tmp.path, fmt::format("predict --weights {} {} --topk 1", (run / "best.safetensors").string(),
                                       (tmp.path / "data" / "val" / "circle" / "0000.png").string()));
  CHECK(pt.rc == 0);
  CHECK(pt.out.find("0000.png:") != std::string::npos);
}

TEST_CASE("--stop-after then --resume equals an uninterrupted run, bit for bit (SGD nesterov, OneCycle, freeze/unfreeze)") {
  test::TempDir tmp("e2e_resume");
  test::make_shapes(tmp.path / "data", 6, 3, 32);
  const std::string common = fmt::format(
      "train --data {} --arch resnet18 --pretrained none --width 4 --epochs 4 --batch 8 --opt sgd --nesterov --lr 0.05 "
      "--lr-mult layer4=0.5,backbone=0.2 --wd 5e-4 --sched onecycle:max_lr=0.05 --clip-norm 2 --label-smoothing 0.1 --freeze until=layer2 --unfreeze-at 2 "
      "--transforms random_crop=32:pad=2,hflip,{} --val-transforms center_crop=32,{} --seed 7 --threads 2 --no-progress "
      "--device cpu",
      (tmp.path / "data").string(), kNorm, kNorm);
  Run full = run_rtune(tmp.path, common + " --out " + (tmp.path / "full").string());
  INFO(full.out, full.err);
  REQUIRE(full.rc == 0);
  // The interrupted run uses the decoded-image cache in its first two parts: batches are the same.
  Run part = run_rtune(tmp.path, common + " --out " + (tmp.path / "part").string() + " --stop-after 1 --cache-mib 64");
  REQUIRE(part.rc == 0);
  CHECK(part.out.find("stopped after epoch 1 of 4") != std::string::npos);
  CHECK(part.out.find("decoded-image cache: train 24 of 24 images") != std::string::npos);
  CHECK(read_jsonl(tmp.path / "part" / "metrics.jsonl").size() == 1);
  Run res1 = run_rtune(tmp.path, "train --resume " + (tmp.path / "part").string() + " --stop-after 3 --threads 1 --cache-mib 1");
  INFO(res1.out, res1.err);
  REQUIRE(res1.rc == 0);
  CHECK(res1.out.find("decoded-image cache: train") != std::string::npos);
  Run res2 = run_rtune(tmp.path, "train --resume " + (tmp.path / "part").string() + " --no-progress");
  INFO(res2.out, res2.err);
  REQUIRE(res2.rc == 0);
  auto a = read_jsonl(tmp.path / "full" / "metrics.jsonl"), b = read_jsonl(tmp.path / "part" / "metrics.jsonl");
  REQUIRE(a.size() == 4);
  REQUIRE(b.size() == 4);
  for (size_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    for (const char* k : {"train_loss", "train_top1", "val_loss", "val_top1", "lr", "phase"}) CHECK(a[i][k] == b[i][k]);
  }
  check_same_model(tmp.path / "full" / "last.ckpt", tmp.path / "part" / "last.ckpt");
  check_same_model(tmp.path / "full" / "best.safetensors", tmp.path / "part" / "best.safetensors");
  // The per-step log of three processes is the uninterrupted one's, byte for byte: 24 images / batch 8
  // = 3 steps an epoch, with every group's LR (layer3 trains from the start, so the first group has one).
  const std::string steps = slurp(tmp.path / "full" / "steps.csv");
  CHECK(steps == slurp(tmp.path / "part" / "steps.csv"));
  CHECK(steps.rfind("step,epoch,loss,lr_stem+layer1+layer2+layer3,lr_layer4,lr_head\n", 0) == 0);
  CHECK(std::count(steps.begin(), steps.end(), '\n') == 1 + 4 * 3);
  CHECK(slurp(tmp.path / "full" / "confusion.json") == slurp(tmp.path / "part" / "confusion.json"));
  for (size_t i = 0; i < 4; ++i) CHECK(a[i]["group_lrs"] == b[i]["group_lrs"]);
  CHECK(a[0]["group_lrs"].size() == 3);
  CHECK(a[3]["group_lrs"][2]["group"] == "head");
  // The report marks the unfreeze (epoch 3) on its curves and draws one LR line per group.
  const std::string html = slurp(tmp.path / "part" / "report.html");
  CHECK(html.find("unfreeze (epoch 3)") != std::string::npos);
  CHECK(html.find("stem+layer1+layer2+layer3 LR") != std::string::npos);
  // A finished run refuses to be overwritten, and resume cannot change the recipe.
  Run again = run_rtune(tmp.path, common + " --out " + (tmp.path / "full").string());
  CHECK(again.rc == 1);
  CHECK(again.err.find("--resume") != std::string::npos);
  Run change = run_rtune(tmp.path, "train --resume " + (tmp.path / "part").string() + " --lr 0.1");
  CHECK(change.rc != 0);
  CHECK(change.err.find("cannot be changed when resuming") != std::string::npos);
  // More epochs under a schedule laid out over the run's epochs (OneCycle's total steps): refused up
  // front, naming the way out, and the run folder is left as it was.
  Run longer = run_rtune(tmp.path, "train --resume " + (tmp.path / "part").string() + " --epochs 6");
  CHECK(test::is_one_line_refusal(longer));
  CHECK(longer.err.find("--epochs 6: the run's --sched onecycle:max_lr=0.05 is laid out over its 4 epochs") != std::string::npos);
  CHECK(longer.err.find("resume without --epochs") != std::string::npos);
  CHECK(read_jsonl(tmp.path / "part" / "metrics.jsonl").size() == 4);
}

TEST_CASE("fine-tune a torchvision .pth with a new head and a frozen backbone: backbone and BN stats bit-identical") {
  test::TempDir tmp("e2e_pth");
  test::make_shapes(tmp.path / "data", 4, 2, 32);
  const std::string pth = fs::path(RTUNE_SOURCE_DIR) / "tests/fixtures/tiny_resnet18.pth";
  Run r = run_rtune(tmp.path, fmt::format("train --data {} --weights {} --freeze backbone --epochs 2 --batch 8 --opt adam "
                                          "--lr 1e-2 --image-size 32 --threads 2 --no-progress --out {}",
                                          (tmp.path / "data").string(), pth, (tmp.path / "run").string()));
  INFO(r.out, r.err);
  REQUIRE(r.rc == 0);
  CHECK(r.out.find("new 4-class head") != std::string::npos);
  auto src = finetune::read_weight_file(pth), dst = finetune::read_weight_file(tmp.path / "run" / "best.safetensors");
  std::map<std::string, Tensor> out(dst.tensors.begin(), dst.tensors.end());
  REQUIRE(out.count("fc.weight"));
  CHECK(out["fc.weight"].size(0) == 4);
  CHECK(dst.metadata["class_names"] == "[\"circle\",\"cross\",\"square\",\"triangle\"]");
  size_t same = 0;
  for (auto& [name, t] : src.tensors) {
    if (name.rfind("fc.", 0) == 0) continue;
    CAPTURE(name);
    REQUIRE(out.count(name));
    if (t.dtype() == DType::i64) CHECK(t.to_vector<int64_t>() == out[name].to_vector<int64_t>());  // num_batches_tracked
    else CHECK(t.to_vector<float>() == out[name].to_vector<float>());
    ++same;
  }
  CHECK(same > 50);

  // predict --json names the four class folders, per image.
  const fs::path val = tmp.path / "data" / "val";
  const std::vector<fs::path> images{val / "circle" / "0000.png", val / "triangle" / "0001.png", val / "cross" / "0000.png"};
  check_predicted_names(predict_json(tmp.path, tmp.path / "run" / "best.safetensors", images, 4), images,
                        {"circle", "cross", "square", "triangle"});
}

TEST_CASE("a corrupt image is skipped with a warning naming it, or stops the run with --strict") {
  test::TempDir tmp("e2e_strict");
  test::make_shapes(tmp.path / "data", 4, 2, 16);
  const fs::path train = tmp.path / "data" / "train";
  const fs::path cls = *std::find_if(fs::directory_iterator(train), fs::directory_iterator(),
                                     [](const fs::directory_entry& e) { return e.is_directory(); });
  std::ofstream(cls / "broken.jpg", std::ios::binary) << std::string("\xFF\xD8\xFFnot really a JPEG", 21);
  const std::string args = fmt::format("train --data {} --width 8 --epochs 1 {}", (tmp.path / "data").string(), recipe(16));
  Run lenient = run_rtune(tmp.path, args + " --out " + (tmp.path / "lenient").string());
  INFO(lenient.err);
  CHECK(lenient.rc == 0);
  CHECK(lenient.err.find("broken.jpg") != std::string::npos);
  CHECK(lenient.err.find("skipped 1 bad file(s)") != std::string::npos);
  CHECK(fs::exists(tmp.path / "lenient" / "last.ckpt"));
  for (const std::string cmd : {args + " --strict --out " + (tmp.path / "strict").string(),
                                "eval --strict --weights " + (tmp.path / "lenient" / "best.safetensors").string() +
                                    " --data " + train.string()}) {
    CAPTURE(cmd);
    Run strict = run_rtune(tmp.path, cmd);
    CHECK(strict.rc != 0);
    CHECK(strict.err.find("broken.jpg") != std::string::npos);
    CHECK(strict.err.find("corrupt") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(tmp.path / "strict" / "last.ckpt"));
}

TEST_CASE("bad arguments are usage errors naming the problem") {
  test::TempDir tmp("e2e_usage");
  test::make_shapes(tmp.path / "data", 1, 1, 16);
  const std::string d = (tmp.path / "data").string(), out = (tmp.path / "o").string();
  struct Case {
    std::string args, says;
  };
  const Case cases[] = {
      {"train --data " + d, "--out"},
      {"train --out " + out, "--data"},
      {"train --data " + d + " --out " + out + " --epochs 0", "--epochs"},
      {"train --data " + d + " --out " + out + " --opt lion", "--opt"},
      {"train --data " + d + " --out " + out + " --freeze until=layer9", "layer9"},
      {"train --data " + d + " --out " + out + " --frozen-bn sometimes", "sometimes"},
      {"train --data " + d + " --out " + out + " --transforms bogus=1", "bogus"},
      {"train --data " + d + " --out " + out + " --lr-mult fc=2", "fc"},
      {"train --data " + d + " --out " + out + " --lr -1", "--lr"},
      {"train --data " + d + " --out " + out + " --val-split 2", "--val-split"},
      {"train --data " + d + " --out " + out + " --no-such-flag", "no-such-flag"},
      {"train --data " + d + " --out " + out + " --cache-mib 16777216", "lower --cache-mib to at most"},  // 16 TiB
      {"predict --topk 3 x.png", "--weights"},
      {"eval --weights /nonexistent.safetensors --data " + d, "nonexistent"},
      {"demo --size 4", "--size"},
      {"train --data " + d + " --out " + out + " --time-budget 5x", "'5x' is not a duration"},
      {"train --data " + d + " --out " + out + " --time-budget 0", "'0' is not a duration"},
      {"train --data " + d + " --out " + out + " --cpu-backend mkl", "--cpu-backend"},
      // a build without oneDNN refuses it by name; one with it refuses nothing here (the case is then
      // the same as the line above, for the table stays one list)
      {"train --data " + d + " --out " + out + " --cpu-backend " + (rtune::cpu::onednn_built() ? "mkl" : "onednn"),
       rtune::cpu::onednn_built() ? "--cpu-backend" : "built without oneDNN"},
      // mistyped subcommands and flags: the nearest name is suggested
      {"trian --data " + d, "rtune: 'trian' is not a command; did you mean 'train'?"},
      {"train --data " + d + " --out " + out + " --epoch 3", "rtune train: unknown option '--epoch'; did you mean '--epochs'?"},
      {"train --data " + d + " --out " + out + " --val-transform=center_crop=16", "did you mean '--val-transforms'?"},
      {"eval --wieghts m.safetensors --data " + d, "did you mean '--weights'?"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.args);
    Run r = run_rtune(tmp.path, c.args);
    CAPTURE(r.err);
    CHECK(r.rc >= 100);  // CLI11's usage-error exit codes (105 validation, 106 required, 109 extras, …)
    CHECK(r.rc <= 120);
    CHECK(r.err.find(c.says) != std::string::npos);
    CHECK_FALSE(fs::exists(tmp.path / "o" / "last.ckpt"));
  }
}

#if !defined(RTUNE_TEST_HAS_CUDA)
TEST_CASE("--device cuda in a build without CUDA: a clear error, no silent CPU run") {
  test::TempDir tmp("e2e_cuda");
  test::make_shapes(tmp.path / "data", 2, 1, 16);
  for (const char* dev : {"cuda", "cuda:1"}) {
    Run r = run_rtune(tmp.path, fmt::format("train --data {} --out {} --pretrained none --width 4 --epochs 1 --image-size 16 "
                                        "--device {}", (tmp.path / "data").string(), (tmp.path / "o").string(), dev));
    CAPTURE(r.err);
    CHECK(r.rc == 1);
    CHECK(r.err.find("--device " + std::string(dev)) != std::string::npos);
    CHECK(r.err.find("--device cpu") != std::string::npos);
    CHECK_FALSE(fs::exists(tmp.path / "o" / "last.ckpt"));
  }
}
#endif

#if !defined(RTUNE_TEST_HAS_CUDA)
TEST_CASE("--device auto without a usable GPU says it uses the CPU") {
  test::TempDir tmp("e2e_auto");
  test::make_shapes(tmp.path / "data", 2, 1, 16);
  Run r = run_rtune(tmp.path, fmt::format("train --data {} --out {} --pretrained none --width 4 --epochs 1 --image-size 16 "
                                          "--device auto --no-progress", (tmp.path / "data").string(), (tmp.path / "o").string()));
  INFO(r.out, r.err);
  REQUIRE(r.rc == 0);
  CHECK(r.out.find("device: cpu (auto: no CUDA GPU found, using the CPU") != std::string::npos);
}
#endif

TEST_CASE("the train log says who gets the cores: data-loading threads and, on the CPU, compute threads") {
  test::TempDir tmp("e2e_threads_line");
  test::make_shapes(tmp.path / "data", 2, 1, 16);
  const std::string common = fmt::format("train --data {} --pretrained none --width 4 --epochs 1 --image-size 16 "
                                         "--device cpu --precision fp32 --no-progress", (tmp.path / "data").string());
  Run r = run_rtune(tmp.path, common + " --threads 3 --compute-threads 1 --out " + (tmp.path / "a").string());
  CAPTURE(r.err);
  REQUIRE(r.rc == 0);
  CHECK(r.out.find("threads: 3 data loading (--threads), 1 compute (--compute-threads)") != std::string::npos);
  Run d = run_rtune(tmp.path, common + " --out " + (tmp.path / "b").string(), "OMP_NUM_THREADS=2");
  CAPTURE(d.err);
  REQUIRE(d.rc == 0);
  const std::string cores = std::to_string(std::max(1u, std::thread::hardware_concurrency()));
  CHECK(d.out.find("threads: " + cores + " data loading (--threads), 2 compute (--compute-threads)") != std::string::npos);
}

// ONEDNN_MAX_CPU_ISA=AVX2 plays a CPU without bf16 instructions (the same binary must serve both kinds),
// and the Eigen backend has no bf16 kernels on any CPU.
TEST_CASE("--precision bf16 on a CPU without bf16 instructions is a clear error before any work") {
  test::TempDir tmp("e2e_bf16_cpu");
  test::make_shapes(tmp.path / "data", 2, 1, 16);
  for (const char* how : {"ONEDNN_MAX_CPU_ISA=AVX2 RTUNE_CPU_BACKEND=onednn", "RTUNE_CPU_BACKEND=eigen"}) {
    CAPTURE(how);
    Run r = run_rtune(tmp.path, fmt::format("train --data {} --out {} --pretrained none --width 4 --epochs 1 "
                                            "--image-size 16 --device cpu --precision bf16",
                                            (tmp.path / "data").string(), (tmp.path / "o").string()), how);
    CAPTURE(r.err);
    CHECK(is_one_line_refusal(r));
    CHECK(r.err.find("--precision bf16") != std::string::npos);
    CHECK(r.err.find("AVX512_BF16") != std::string::npos);
    CHECK(r.err.find("--precision fp32") != std::string::npos);
    CHECK_FALSE(fs::exists(tmp.path / "o" / "last.ckpt"));
    // auto falls back to fp32 there, and says so.
    Run a = run_rtune(tmp.path, fmt::format("train --data {} --out {} --pretrained none --width 4 --epochs 1 "
                                            "--image-size 16 --device cpu --no-progress",
                                            (tmp.path / "data").string(), (tmp.path / "auto").string()), how);
    CAPTURE(a.err);
    REQUIRE(a.rc == 0);
    CHECK(a.out.find("device: cpu, fp32") != std::string::npos);
    fs::remove_all(tmp.path / "auto");
  }
}

// Where the CPU multiplies bf16 in hardware, --precision bf16 (and auto) train with bf16 convolution
// products; the run resumes bit-exact as in fp32 (the kernels are deterministic at a fixed thread count).
TEST_CASE("--precision bf16 on a CPU with bf16 instructions trains, and auto picks it") {
  if (!kernels::supports_bf16(Device::cpu())) {
    MESSAGE("skipped: this CPU has no AVX512_BF16/AMX (or the build no oneDNN)");
    return;
  }
  test::TempDir tmp("e2e_bf16_cpu_train");
  test::make_shapes(tmp.path / "data", 2, 3, 32);
  const std::string common = fmt::format("train --data {} --pretrained none --width 4 --epochs 2 --batch 4 "
                                         "--image-size 32 --device cpu --seed 3 --no-progress --threads 2",
                                         (tmp.path / "data").string());
  Run full = run_rtune(tmp.path, common + " --precision bf16 --out " + (tmp.path / "full").string());
  CAPTURE(full.err);
  REQUIRE(full.rc == 0);
  CHECK(full.out.find("device: cpu, bf16") != std::string::npos);
  Run a = run_rtune(tmp.path, common + " --out " + (tmp.path / "auto").string());
  REQUIRE(a.rc == 0);
  CHECK(a.out.find("device: cpu, bf16") != std::string::npos);
  CHECK(slurp(tmp.path / "auto" / "steps.csv") == slurp(tmp.path / "full" / "steps.csv"));
  Run part = run_rtune(tmp.path, common + " --precision bf16 --stop-after 1 --out " + (tmp.path / "part").string());
  REQUIRE(part.rc == 0);
  Run resumed = run_rtune(tmp.path, "train --resume " + (tmp.path / "part").string() + " --no-progress");
  CAPTURE(resumed.err);
  REQUIRE(resumed.rc == 0);
  CHECK(slurp(tmp.path / "part" / "steps.csv") == slurp(tmp.path / "full" / "steps.csv"));
}

// The two model benchmarks share their flags and their timing loop: each prints img/s; infer says it runs
// in eval mode without autograd (forward only). On a build with CUDA they run on the device as well.
TEST_CASE("bench train and bench infer at tiny sizes: img/s, with the same flags (--freeze for train only)") {
  test::TempDir tmp("e2e_bench_model");
  std::vector<std::string> devices = {"--device cpu --compute-threads 1"};
#if defined(RTUNE_TEST_HAS_CUDA)
  if (cuda::rt::device_count() > 0) {  // a real-GPU build on a machine without one runs the CPU's only
    devices.push_back("--device cuda --precision fp32");
    devices.push_back("--device cuda --precision bf16");
  }
#endif
  for (const std::string& dev : devices)
    for (const char* what : {"train --freeze backbone", "train --freeze backbone --frozen-bn train", "train", "infer"}) {
      const std::string cmd = fmt::format("bench {} --arch resnet18 --width 4 --input 32 --batch 2 --warmup 1 --steps 2 {}",
                                          what, dev);
      CAPTURE(cmd);
      Run r = run_rtune(tmp.path, cmd);
      CAPTURE(r.err);
      REQUIRE(r.rc == 0);
      CHECK(r.out.find(" img/s") != std::string::npos);
      const bool infer = std::string(what) == "infer";
      CHECK((r.out.find("rtune infer benchmark") != std::string::npos) == infer);
      CHECK((r.out.find("eval mode, no grad") != std::string::npos) == infer);
      CHECK((r.out.find("last loss") != std::string::npos) == !infer);
      const bool frozen = std::string(what).find("--freeze backbone") != std::string::npos;
      CHECK((r.out.find("backbone frozen") != std::string::npos) == frozen);
      CHECK((r.out.find("frozen BatchNorm in eval mode") != std::string::npos) == (frozen && std::string(what).find("--frozen-bn train") == std::string::npos));
      if (dev.find("cpu") != std::string::npos) CHECK(r.out.find("1 OpenMP threads") != std::string::npos);
    }
  Run frozen = run_rtune(tmp.path, "bench infer --freeze backbone --steps 1");
  CHECK(frozen.rc != 0);
  CHECK(frozen.err.find("--freeze") != std::string::npos);
}

// Twelve class folders "1".."12" (ImageFolder sorts them as text: "1", "10", "11", "12", "2", …), each with
// one image per split, copied from the generated shapes.
static void make_numbered_folders(const fs::path& root, int classes) {
  test::make_shapes(root / "src", 1, 1, 16);
  const char* shapes[] = {"circle", "cross", "square", "triangle"};
  for (const char* split : {"train", "val"})
    for (int i = 1; i <= classes; ++i) {
      fs::create_directories(root / "data" / split / std::to_string(i));
      fs::copy_file(root / "src" / split / shapes[i % 4] / "0000.png", root / "data" / split / std::to_string(i) / "0000.png");
    }
}

TEST_CASE("--classes cat_to_name.json keyed by folder name: each folder keeps its own name, and eval maps folders") {
  test::TempDir tmp("e2e_classes");
  make_numbered_folders(tmp.path, 12);
  nlohmann::json names;
  for (int i = 1; i <= 12; ++i) names[std::to_string(i)] = "flower " + std::to_string(i);
  std::ofstream(tmp.path / "cat_to_name.json") << names.dump();
  const std::string data = (tmp.path / "data").string(), run = (tmp.path / "run").string();
  const std::string common = "--pretrained none --width 4 --epochs 1 --image-size 16 --batch 4 --threads 2 --no-progress --device cpu";
  Run r = run_rtune(tmp.path, fmt::format("train --data {} --classes {} --out {} {}", data,
                                          (tmp.path / "cat_to_name.json").string(), run, common));
  INFO(r.out, r.err);
  REQUIRE(r.rc == 0);
  CHECK(r.out.find("matched to the 12 class folders by folder name") != std::string::npos);
  auto meta = finetune::read_weight_file(fs::path(run) / "best.safetensors").metadata;
  auto folders = nlohmann::json::parse(meta.at("class_folders")), display = nlohmann::json::parse(meta.at("class_names"));
  REQUIRE(folders.size() == 12);
  REQUIRE(display.size() == 12);
  CHECK(folders[1] == "10");
  for (size_t k = 0; k < 12; ++k) CHECK(display[k] == "flower " + folders[k].get<std::string>());

  // eval matches the val folders by folder name (not by the display names) and reports display names.
  Run ev = run_rtune(tmp.path, fmt::format("eval --weights {}/best.safetensors --data {}/val --json --threads 2", run, data));
  INFO(ev.err);
  REQUIRE(ev.rc == 0);
  auto ej = nlohmann::json::parse(ev.out);
  CHECK(ej["images"] == 12);
  for (size_t k = 0; k < 12; ++k) {
    CHECK(ej["per_class"][k]["name"] == display[k]);
    CHECK(ej["per_class"][k]["images"] == 1);
  }
  // predict --json names each image's classes by cat_to_name.json, in the folders' text order.
  std::vector<std::string> by_folder_order;
  for (const char* f : {"1", "10", "11", "12", "2", "3", "4", "5", "6", "7", "8", "9"}) by_folder_order.push_back(std::string("flower ") + f);
  const fs::path val = tmp.path / "data" / "val";
  const std::vector<fs::path> images{val / "1" / "0000.png", val / "10" / "0000.png", val / "2" / "0000.png"};
  check_predicted_names(predict_json(tmp.path, fs::path(run) / "best.safetensors", images, 12), images, by_folder_order);

  // A folder the model was not trained on is named.
  fs::create_directories(tmp.path / "data" / "val2" / "13");
  fs::copy_file(tmp.path / "data" / "val" / "1" / "0000.png", tmp.path / "data" / "val2" / "13" / "0000.png");
  Run bad = run_rtune(tmp.path, fmt::format("eval --weights {}/best.safetensors --data {}/val2", run, data));
  CHECK(bad.rc == 1);
  CHECK(bad.err.find("class folder '13' is not one of the model's class folders") != std::string::npos);

  // Keys that are not exactly the folders: an error naming the folder without a key and the extra key.
  names.erase("12");
  names["13"] = "flower 13";
  std::ofstream(tmp.path / "bad.json") << names.dump();
  Run mis = run_rtune(tmp.path, fmt::format("train --data {} --classes {} --out {} {}", data,
                                            (tmp.path / "bad.json").string(), (tmp.path / "bad").string(), common));
  CHECK(mis.rc == 1);
  CHECK(mis.err.find("folders with no key: 12") != std::string::npos);
  CHECK(mis.err.find("keys with no folder: 13") != std::string::npos);
  CHECK_FALSE(fs::exists(tmp.path / "bad" / "last.ckpt"));
}

TEST_CASE("eval and predict use the training run's validation transforms from the model file: eval reproduces the log") {
  test::TempDir tmp("e2e_val_tf");
  test::make_shapes(tmp.path / "data", 6, 6, 48);
  // Not the preset for 32 px (resize=36): resize=40, and no normalize (validation then used the training's).
  const std::string vtf = "resize=40,center_crop=32";
  const fs::path run = tmp.path / "run";
  // fp32: eval computes in fp32, while a bf16 run (auto on a CPU with AVX512_BF16) validates in bf16.
  Run r = run_rtune(tmp.path, fmt::format("train --data {} --out {} --pretrained none --width 4 --epochs 2 --batch 8 "
                                          "--threads 2 --no-progress --device cpu --precision fp32 "
                                          "--transforms random_crop=32,{} --val-transforms {}",
                                          (tmp.path / "data").string(), run.string(), kNorm, vtf));
  INFO(r.out, r.err);
  REQUIRE(r.rc == 0);
  CHECK(finetune::read_weight_file(run / "best.safetensors").metadata.at("eval_transforms") == vtf);
  auto epochs = read_jsonl(run / "metrics.jsonl");
  nlohmann::json best;
  for (auto& e : epochs)
    if (best.is_null() || e["val_top1"].get<double>() > best["val_top1"].get<double>()) best = e;  // the first best, as saved
  Run ev = run_rtune(tmp.path, fmt::format("eval --weights {} --data {} --json --threads 2", (run / "best.safetensors").string(),
                                           (tmp.path / "data" / "val").string()));
  INFO(ev.err);
  REQUIRE(ev.rc == 0);
  auto ej = nlohmann::json::parse(ev.out);
  CHECK(ej["top1"].get<double>() == doctest::Approx(best["val_top1"].get<double>()).epsilon(1e-12));
  CHECK(ej["loss"].get<double>() == doctest::Approx(best["val_loss"].get<double>()).epsilon(1e-6));
  // The preset the metadata's input size implies gives other inputs, hence another loss: the check above can fail.
  Run preset = run_rtune(tmp.path, fmt::format("eval --weights {} --data {} --json --threads 2 --transforms "
                                               "resize=36,center_crop=32,{}", (run / "best.safetensors").string(),
                                               (tmp.path / "data" / "val").string(), kNorm));
  REQUIRE(preset.rc == 0);
  CHECK(nlohmann::json::parse(preset.out)["loss"].get<double>() !=
        doctest::Approx(best["val_loss"].get<double>()).epsilon(1e-6));
  Run pr = run_rtune(tmp.path, fmt::format("predict --weights {} {} --json", (run / "best.safetensors").string(),
                                           (tmp.path / "data" / "val" / "circle" / "0000.png").string()));
  REQUIRE(pr.rc == 0);
  CHECK(nlohmann::json::parse(pr.out)["transforms"] == vtf);
}

TEST_CASE("weights whose head has the data's class count: the kept head is said, with how to replace it") {
  test::TempDir tmp("e2e_head_kept");
  make_numbered_folders(tmp.path, 10);  // tiny_resnet18.pth has 10 outputs
  const std::string pth = fs::path(RTUNE_SOURCE_DIR) / "tests/fixtures/tiny_resnet18.pth";
  const std::string common = fmt::format("train --data {} --weights {} --epochs 1 --image-size 16 --batch 5 --threads 2 "
                                         "--no-progress --device cpu", (tmp.path / "data").string(), pth);
  Run kept = run_rtune(tmp.path, common + " --out " + (tmp.path / "kept").string());
  INFO(kept.out, kept.err);
  REQUIRE(kept.rc == 0);
  CHECK(kept.out.find("kept the weights' 10-class head") != std::string::npos);
  CHECK(kept.out.find("--reset-head") != std::string::npos);
  Run reset = run_rtune(tmp.path, common + " --reset-head --out " + (tmp.path / "reset").string());
  INFO(reset.out, reset.err);
  REQUIRE(reset.rc == 0);
  CHECK(reset.out.find("new 10-class head") != std::string::npos);
  CHECK(reset.out.find("kept the weights'") == std::string::npos);
}

TEST_CASE("train and validation normalised differently: a warning naming both; the README's CIFAR recipe runs clean") {
  test::TempDir tmp("e2e_norm_warn");
  test::make_shapes(tmp.path / "data", 2, 1, 32);
  const std::string pth = fs::path(RTUNE_SOURCE_DIR) / "tests/fixtures/tiny_resnet18.pth";
  int n = 0;
  auto train = [&](const std::string& extra) {
    return run_rtune(tmp.path, fmt::format("train --data {} --weights {} --batch 8 --threads 2 --no-progress "
                                           "--device cpu --out {} {}", (tmp.path / "data").string(), pth,
                                           (tmp.path / ("o" + std::to_string(n++))).string(), extra));
  };
  Run unnormalised = train("--epochs 1 --transforms random_crop=32:pad=4:reflect,hflip "
                           "--val-transforms center_crop=32,normalize=imagenet");
  INFO(unnormalised.err);
  REQUIRE(unnormalised.rc == 0);
  CHECK(unnormalised.err.find("warning: training transforms 'random_crop=32:pad=4:reflect,hflip' do not normalise") !=
        std::string::npos);
  CHECK(unnormalised.err.find("'center_crop=32,normalize=imagenet' use normalize=imagenet") != std::string::npos);

  Run differ = train("--epochs 1 --transforms random_crop=32," + kNorm + " --val-transforms center_crop=32,normalize=imagenet");
  INFO(differ.err);
  REQUIRE(differ.rc == 0);
  CHECK(differ.err.find("use normalize=0.5:0.5:0.5/0.25:0.25:0.25 but validation transforms") != std::string::npos);
  CHECK(differ.err.find("use normalize=imagenet") != std::string::npos);

  // The README's CIFAR example (fixture weights, fewer epochs): presets that normalise alike, no warning.
  Run cifar = train("--transforms cifar-train --val-transforms cifar-eval --freeze backbone --unfreeze-at 1 "
                    "--sched plateau:patience=2 --epochs 2");
  INFO(cifar.out, cifar.err);
  REQUIRE(cifar.rc == 0);
  CHECK(cifar.err.find("warning") == std::string::npos);
  const fs::path val = tmp.path / "data" / "val";
  const std::vector<fs::path> images{val / "square" / "0000.png", val / "cross" / "0000.png"};
  check_predicted_names(predict_json(tmp.path, tmp.path / "o2" / "best.safetensors", images, 4), images,
                        {"circle", "cross", "square", "triangle"});
  // The same val pipeline without normalize inherits the training's: nothing to warn about.
  Run inherit = train("--epochs 1 --transforms cifar-train --val-transforms center_crop=32");
  REQUIRE(inherit.rc == 0);
  CHECK(inherit.err.find("warning") == std::string::npos);
}

TEST_CASE("train --help documents the transform syntax, --frozen-bn and what --unfreeze-at does") {
  test::TempDir tmp("e2e_help");
  Run r = run_rtune(tmp.path, "train --help");
  REQUIRE(r.rc == 0);
  for (const char* says : {"transform spec: comma-separated tokens", "cifar-eval (center_crop=32,normalize=imagenet)",
                           "model.train()", "fresh optimizer", "schedule restarted over the", "--lr-mult"})
    CHECK_MESSAGE(r.out.find(says) != std::string::npos, says);
}

TEST_CASE("--val-transforms resize=S (torchvision's Resize(S)) trains on square images; a non-square one stops it, named") {
  test::TempDir tmp("e2e_resize_s");
  test::make_shapes(tmp.path / "data", 2, 1, 32);  // square images
  const std::string args = fmt::format("train --data {} --pretrained none --width 4 --epochs 1 --batch 4 --threads 2 "
                                       "--no-progress --device cpu --transforms random_crop=24,normalize=imagenet "
                                       "--val-transforms resize=24,normalize=imagenet", (tmp.path / "data").string());
  Run ok = run_rtune(tmp.path, args + " --out " + (tmp.path / "ok").string());
  INFO(ok.out, ok.err);
  REQUIRE(ok.rc == 0);
  // eval from the model file uses the recorded resize=24 on the same square images.
  Run ev = run_rtune(tmp.path, fmt::format("eval --weights {} --data {} --json", (tmp.path / "ok" / "best.safetensors").string(),
                                           (tmp.path / "data" / "val").string()));
  INFO(ev.err);
  CHECK(ev.rc == 0);

  io::write_png(tmp.path / "data" / "val" / "circle" / "wide.png", io::Image(20, 30));
  Run bad = run_rtune(tmp.path, args + " --out " + (tmp.path / "bad").string());
  CHECK(bad.rc == 1);
  CHECK(bad.err.find("wide.png: resize=24 gives 24x36 for this non-square image") != std::string::npos);
  CHECK(bad.err.find("center_crop=24") != std::string::npos);
}

TEST_CASE("the flowers tutorial's layout: DIR/train with DIR/valid is found as train + validation") {
  test::TempDir tmp("e2e_valid_folder");
  test::make_shapes(tmp.path / "data", 2, 1, 16);
  fs::rename(tmp.path / "data" / "val", tmp.path / "data" / "valid");
  const std::string d = (tmp.path / "data").string(), out = (tmp.path / "run").string();
  Run r = run_rtune(tmp.path, fmt::format("train --data {} --width 4 --image-size 16 --epochs 1 --batch 4 --threads 1 "
                                          "--out {} --no-progress", d, out));
  INFO(r.err);
  REQUIRE(r.rc == 0);
  CHECK(r.out.find(fmt::format("using {}/train and {}/valid", d, d)) != std::string::npos);
  // The epoch's record carries a validation accuracy (4 validation images, one per class).
  const std::string log = slurp(fs::path(out) / "metrics.jsonl");
  CHECK(nlohmann::json::parse(log.substr(0, log.find('\n'))).contains("val_top1"));
}

TEST_CASE("--time-budget stops after the epoch past which another would not fit, resumable; a large one runs all") {
  test::TempDir tmp("e2e_budget");
  test::make_shapes(tmp.path / "data", 2, 1, 16);
  const std::string args = fmt::format("train --data {} --pretrained none --width 4 --epochs 3 --image-size 16 --batch 8 "
                                       "--threads 2 --no-progress --device cpu", (tmp.path / "data").string());
  const fs::path run = tmp.path / "short";
  // Any epoch takes longer than 1 ms: after epoch 1 another cannot fit.
  Run r = run_rtune(tmp.path, args + " --time-budget 0.001s --out " + run.string());
  INFO(r.out, r.err);
  REQUIRE(r.rc == 0);
  CHECK(r.out.find("stopped after epoch 1 of 3 (--time-budget 0.001s: another epoch") != std::string::npos);
  CHECK(read_jsonl(run / "metrics.jsonl").size() == 1);
  Run res = run_rtune(tmp.path, "train --resume " + run.string() + " --no-progress --time-budget 1h");
  INFO(res.out, res.err);
  REQUIRE(res.rc == 0);
  CHECK(res.out.find("stopped after") == std::string::npos);
  CHECK(read_jsonl(run / "metrics.jsonl").size() == 3);
  Run all = run_rtune(tmp.path, args + " --time-budget 20m --out " + (tmp.path / "all").string());
  REQUIRE(all.rc == 0);
  CHECK(read_jsonl(tmp.path / "all" / "metrics.jsonl").size() == 3);
}

TEST_CASE("README walkthrough: list files with names.txt, frozen backbone, Adam -> predict --json names by names.txt") {
  test::TempDir tmp("e2e_list_files");
  const fs::path data = tmp.path / "data";
  fs::create_directories(data / "images");
  const std::vector<std::string> names{"round one", "square one", "pointy one"};
  for (const std::string split : {"train", "val"}) {
    std::ofstream list(data / (split + ".txt"));
    for (int label = 0; label < 3; ++label)
      for (int i = 0; i < 2; ++i) {
        const std::string rel = fmt::format("images/{}_{}_{}.png", split, label, i);
        io::write_png(data / rel, finetune::synth::render(finetune::synth::Task::shapes, label, 32, 1, uint64_t(10 * label + i)));
        list << rel << ' ' << label << '\n';
      }
  }
  std::ofstream(data / "names.txt") << names[0] << '\n' << names[1] << '\n' << names[2] << '\n';
  const std::string pth = fs::path(RTUNE_SOURCE_DIR) / "tests/fixtures/tiny_resnet18.pth";
  Run r = run_rtune(tmp.path, fmt::format("train --train-list {0}/train.txt --val-list {0}/val.txt --classes {0}/names.txt "
                                          "--weights {1} --freeze backbone --opt adam --lr 1e-3 --epochs 2 --image-size 32 "
                                          "--batch 4 --threads 2 --no-progress --device cpu --out {2}",
                                          data.string(), pth, (tmp.path / "run").string()));
  INFO(r.out, r.err);
  REQUIRE(r.rc == 0);
  const std::vector<fs::path> images{data / "images" / "val_2_0.png", data / "images" / "val_0_1.png"};
  check_predicted_names(predict_json(tmp.path, tmp.path / "run" / "best.safetensors", images, 3), images, names);
}

TEST_CASE("README walkthrough: ResNet-50 .pth, --val-split, OneCycle, wd, clip-value -> predict --json names the folders") {
  test::TempDir tmp("e2e_r50_split");
  finetune::synth::write_image_folder(tmp.path / "imgs", finetune::synth::Task::families, 5, 32, 1);
  const std::string pth = fs::path(RTUNE_SOURCE_DIR) / "tests/fixtures/tiny_resnet50.pth";  // 7 classes: a new head
  Run r = run_rtune(tmp.path, fmt::format("train --data {} --val-split 0.2 --weights {} --opt sgd --lr 0.01 --wd 1e-4 "
                                          "--sched onecycle:max_lr=0.01 --clip-value 1 --epochs 2 --image-size 32 --batch 4 "
                                          "--threads 2 --no-progress --device cpu --out {}",
                                          (tmp.path / "imgs").string(), pth, (tmp.path / "run").string()));
  INFO(r.out, r.err);
  REQUIRE(r.rc == 0);
  CHECK(r.out.find("new 3-class head") != std::string::npos);
  const fs::path imgs = tmp.path / "imgs";
  const std::vector<fs::path> images{imgs / "round" / "0004.png", imgs / "four_corners" / "0000.png",
                                     imgs / "three_corners" / "0002.png"};
  check_predicted_names(predict_json(tmp.path, tmp.path / "run" / "best.safetensors", images, 3), images,
                        {"four_corners", "round", "three_corners"});  // ImageFolder: sorted
}

TEST_CASE("README walkthrough: convert a .pth, train a 4-class head from the safetensors -> predict --json names the folders") {
  test::TempDir tmp("e2e_convert_train");
  test::make_shapes(tmp.path / "data", 3, 2, 32);
  const fs::path st = tmp.path / "resnet18.safetensors";
  Run cv = run_rtune(tmp.path, fmt::format("convert {} {}", (fs::path(RTUNE_SOURCE_DIR) / "tests/fixtures/tiny_resnet18.pth").string(),
                                           st.string()));
  INFO(cv.out, cv.err);
  REQUIRE(cv.rc == 0);
  Run r = run_rtune(tmp.path, fmt::format("train --data {} --weights {} --freeze backbone --epochs 2 --image-size 32 --batch 4 "
                                          "--threads 2 --no-progress --device cpu --out {}",
                                          (tmp.path / "data").string(), st.string(), (tmp.path / "run").string()));
  INFO(r.out, r.err);
  REQUIRE(r.rc == 0);
  CHECK(r.out.find("new 4-class head") != std::string::npos);
  const fs::path val = tmp.path / "data" / "val";
  const std::vector<fs::path> images{val / "triangle" / "0001.png", val / "circle" / "0000.png"};
  check_predicted_names(predict_json(tmp.path, tmp.path / "run" / "best.safetensors", images, 4), images,
                        {"circle", "cross", "square", "triangle"});
}

TEST_CASE("demo --quick runs end to end and says where the report is") {
  test::TempDir tmp("e2e_demo");
  Run r = run_rtune(tmp.path, fmt::format("demo --quick --out {} --threads 2", (tmp.path / "demo").string()));
  INFO(r.out, r.err);
  REQUIRE(r.rc == 0);
  CHECK(r.out.find("Report: " + fs::absolute(tmp.path / "demo" / "report.html").string()) != std::string::npos);
  CHECK(r.out.find("base width") != std::string::npos);
  const std::string html = slurp(tmp.path / "demo" / "report.html");
  for (const char* v : {"pretrained, frozen backbone", "pretrained, all layers", "from scratch"})
    CHECK(html.find(v) != std::string::npos);
  for (const char* sub : {"pretrain", "finetune_frozen", "finetune_all", "scratch"})
    CHECK(fs::exists(tmp.path / "demo" / sub / "report.html"));
}

#if defined(RTUNE_TEST_HAS_CUDA)

// The CLI's GPU path end to end (device choice, host->device batches, the CUDA backend, checkpoints):
// on the simulated device in CI, on hardware when built for a GPU. A few SGD steps at 64 px (layer4's
// batch norm then sees 32 values per channel) must give the CPU run's losses. One step per epoch:
// epoch 1's training loss is computed before any update and its validation loss, like epoch 2's
// training loss, one SGD step after the same start: single steps are well conditioned, held to 1e-4
// relative (measured ~1e-7 on the simulated device). Epoch 2's validation loss comes two steps after
// the start, and float32 training trajectories are chaotic (tests/cuda/test_cuda_trajectory.cpp: the
// CPU's own float32 run leaves float64 as fast as the device's does), so it is only a sanity check at 5%.
// bf16 mixed precision (the default on a GPU) rounds activations and weights to 8 significant bits:
// epoch 1's losses are held to 1e-2 relative of the CPU's (measured 2.5e-3 on the simulated device);
// by epoch 2 the bf16 trajectory has drifted on this 6-image set (measured 4-7%), held to 15%.
TEST_CASE("train --device cuda matches --device cpu (epoch 1 losses: fp32 within 1e-4 relative, bf16 within 1e-2)") {
  if (cuda::rt::device_count() == 0) {
    MESSAGE("skipped: no CUDA device present");
    return;
  }
  test::TempDir tmp("e2e_cuda_vs_cpu");
  test::make_shapes(tmp.path / "data", 3, 2, 64);
  std::vector<std::vector<nlohmann::json>> runs;
  struct Variant {
    const char *device, *precision, *dir;
  };
  for (const Variant v : {Variant{"cpu", "fp32", "cpu"}, Variant{"cuda", "fp32", "fp32"}, Variant{"cuda", "bf16", "bf16"}}) {
    fs::path out = tmp.path / v.dir;
    Run r = run_rtune(tmp.path, fmt::format("train --data {} --out {} --pretrained none --width 4 --epochs 2 --batch 8 "
                                            "--image-size 64 --transforms center_crop=64,{} --val-transforms "
                                            "center_crop=64,{} --opt sgd --lr 0.01 --seed 5 --no-progress --device {} "
                                            "--precision {}",
                                            (tmp.path / "data").string(), out.string(), kNorm, kNorm, v.device,
                                            v.precision));
    CAPTURE(r.err);
    REQUIRE(r.rc == 0);
    CHECK(fs::exists(out / "best.safetensors"));
    CHECK(r.out.find(std::string(v.precision) == "bf16" ? "cuda:0, bf16" : ", fp32") != std::string::npos);
    runs.push_back(read_jsonl(out / "metrics.jsonl"));
  }
  for (auto& run : runs) REQUIRE(run.size() == 2);
  for (size_t e = 0; e < 2; ++e)
    for (const char* key : {"train_loss", "val_loss"}) {
      CAPTURE(e);
      CAPTURE(key);
      const double a = runs[0][e][key].get<double>(), b = runs[1][e][key].get<double>(), h = runs[2][e][key].get<double>();
      MESSAGE("epoch " << e + 1 << " " << std::string(key) << ": cpu " << a << ", cuda fp32 " << b << ", cuda bf16 " << h);
      const bool one_step = e == 0 || std::string(key) == "train_loss";
      CHECK(std::abs(a - b) <= (one_step ? 1e-4 : 5e-2) * std::abs(a));
      CHECK(std::abs(a - h) <= (e == 0 ? 1e-2 : 1.5e-1) * std::abs(a));
    }
}

#if defined(RTUNE_TEST_CUDA_SIM)
// Out of device memory (the simulated device capped at 6 MiB): one line naming the batch to lower and
// a smaller one to try, exit 1, no checkpoint or temporary file left; the same folder then trains
// with the smaller batch.
TEST_CASE("CUDA out of memory names the --batch to lower and leaves the run folder usable") {
  test::TempDir tmp("e2e_cuda_oom");
  test::make_shapes(tmp.path / "data", 8, 1, 16);
  const fs::path out = tmp.path / "o";
  const std::string args = fmt::format("train --data {} --out {} --pretrained none --width 4 --epochs 1 "
                                       "--image-size 64 --no-progress --device cuda --precision fp32",
                                       (tmp.path / "data").string(), out.string());
  ::setenv("RTUNE_SIM_MEMORY_MB", "6", 1);  // read by the child rtune's simulated device
  Run r = run_rtune(tmp.path, args + " --batch 64");
  CAPTURE(r.err);
  CHECK(r.rc == 1);
  CHECK(r.err.find("CUDA out of memory") != std::string::npos);
  CHECK(r.err.find("one batch of 64: lower --batch (e.g. --batch 32) or use --precision bf16") != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK_FALSE(fs::exists(out / "last.ckpt"));
  if (fs::exists(out))
    for (const auto& e : fs::directory_iterator(out)) CHECK(e.path().filename().string().find(".tmp") == std::string::npos);
  Run ok = run_rtune(tmp.path, args + " --batch 2");
  ::unsetenv("RTUNE_SIM_MEMORY_MB");
  CAPTURE(ok.err);
  CHECK(ok.rc == 0);
  CHECK(fs::exists(out / "last.ckpt"));
}
#endif
#endif
