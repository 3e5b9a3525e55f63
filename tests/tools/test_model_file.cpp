// The rtune model file (finetune/model_file.h): save -> load is bit-exact with metadata intact, the layout
// is the safetensors library's own (the tensor bytes equal a file Python's safetensors wrote), and
// damaged or foreign metadata is refused by read_model_info / load_model with a message naming the key.
#include <cstring>
#include <unistd.h>
#include "io/formats/safetensors.h"
#include "finetune/model_file.h"
#include "tests/core/test_util.h"

using namespace rtune;
namespace fs = std::filesystem;

namespace {
using test::error_of;

bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  Tensor x = a.contiguous(), y = b.contiguous();
  return std::memcmp(x.raw_data(), y.raw_data(), size_t(x.numel()) * dtype_size(x.dtype())) == 0;
}

finetune::ModelInfo tiny_info() {
  finetune::ModelInfo info;
  for (int i = 0; i < 10; ++i) info.class_names.push_back(i == 3 ? "fire lily \xE2\x9C\xBF" : "class " + std::to_string(i));
  for (int i = 0; i < 10; ++i) info.class_folders.push_back(std::to_string(i + 1));
  info.eval_transforms = "resize=72,center_crop=64";
  info.input_size = 64;
  info.mean = {0.5, 0.25, 0.125};
  info.std = {0.2, 0.3, 0.4};
  info.source = "tiny_resnet18.pth";
  info.extra["epochs"] = "3";
  return info;
}

// Re-writes `src` with its tensors unchanged and metadata edited by `edit`.
void rewrite(const fs::path& src, const fs::path& dst, const std::function<void(std::map<std::string, std::string>&)>& edit) {
  io::SafetensorsFile f = io::SafetensorsFile::open(src);
  std::vector<io::SafetensorsEntry> e;
  for (const auto& v : f.tensors()) e.push_back({v.name, v.dtype, v.shape, v.bytes});
  auto meta = f.metadata();
  edit(meta);
  io::write_safetensors(dst, e, meta);
}
}  // namespace

TEST_CASE("model file: save -> load is bit-exact and keeps the metadata") {
  test::TempDir tmp("model_file");
  const fs::path dir = tmp.path;
  finetune::LoadedModel src = finetune::load_model(test::fixture("tiny_resnet18.pth"));
  CHECK_FALSE(src.had_metadata);
  CHECK(src.info.arch == "resnet18");
  CHECK(src.info.width == 8);
  CHECK(src.info.num_classes == 10);
  finetune::save_model(dir / "m.safetensors", *src.model, tiny_info());

  finetune::ModelInfo info = finetune::read_model_info(dir / "m.safetensors");
  CHECK(info.arch == "resnet18");
  CHECK(info.width == 8);
  CHECK(info.num_classes == 10);
  CHECK(info.class_names == tiny_info().class_names);
  CHECK(info.class_folders == tiny_info().class_folders);
  CHECK(info.eval_transforms == "resize=72,center_crop=64");
  CHECK(info.input_size == 64);
  CHECK(info.mean == tiny_info().mean);
  CHECK(info.std == tiny_info().std);
  CHECK(info.source == "tiny_resnet18.pth");
  CHECK(info.extra == std::map<std::string, std::string>{{"epochs", "3"}});
  CHECK(finetune::is_model_file(dir / "m.safetensors"));
  CHECK_FALSE(finetune::is_model_file(test::fixture("tiny_resnet18.pth")));
  CHECK_FALSE(finetune::is_model_file(test::fixture("tiny_resnet18.safetensors")));

  finetune::LoadedModel back = finetune::load_model(dir / "m.safetensors");
  CHECK(back.had_metadata);
  CHECK(back.info.class_names == info.class_names);
  auto a = src.model->state_dict(), b = back.model->state_dict();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(a[i].first);
    CHECK(a[i].first == b[i].first);
    CHECK(same_bytes(*a[i].second, *b[i].second));
  }
  fs::remove_all(dir);
}

TEST_CASE("model file: the layout is the safetensors library's (tensor bytes equal a Python-written file)") {
  test::TempDir tmp("model_file");
  const fs::path dir = tmp.path;
  finetune::LoadedModel src = finetune::load_model(test::fixture("tiny_resnet18.safetensors"));
  finetune::save_model(dir / "m.safetensors", *src.model, {});
  io::SafetensorsFile ours = io::SafetensorsFile::open(dir / "m.safetensors");
  io::SafetensorsFile python = io::SafetensorsFile::open(test::fixture("tiny_resnet18.safetensors"));
  REQUIRE(ours.tensors().size() == python.tensors().size());
  for (size_t i = 0; i < ours.tensors().size(); ++i) {
    const io::SafetensorsView &x = ours.tensors()[i], &y = python.tensors()[i];
    CAPTURE(x.name);
    CHECK(x.name == y.name);  // same order: dtype then name, as the library sorts
    CHECK(x.dtype == y.dtype);
    CHECK(x.shape == y.shape);
    REQUIRE(x.bytes.size() == y.bytes.size());
    CHECK(std::memcmp(x.bytes.data(), y.bytes.data(), x.bytes.size()) == 0);
  }
  CHECK(ours.metadata().at("format") == "rtune-model");
  CHECK(ours.metadata().at("class_names") == "[]");
  CHECK(ours.metadata().at("mean") == "[0.485,0.456,0.406]");
  CHECK(ours.metadata().at("rtune_version") == RTUNE_VERSION);
  fs::remove_all(dir);
}

TEST_CASE("model file: float16 on disk stores the rounded values; int64 buffers stay int64") {
  test::TempDir tmp("model_file");
  const fs::path dir = tmp.path;
  finetune::LoadedModel src = finetune::load_model(test::fixture("tiny_resnet18.pth"));
  finetune::save_model(dir / "h.safetensors", *src.model, {}, DType::f16);
  io::SafetensorsFile f = io::SafetensorsFile::open(dir / "h.safetensors");
  for (auto& [name, t] : src.model->state_dict()) {
    CAPTURE(name);
    const io::SafetensorsView& v = f.at(name);
    Tensor stored = from_bytes(v.bytes.data(), v.bytes.size(), v.shape, v.dtype);
    if (t->dtype() == DType::i64) CHECK(same_bytes(stored, *t));
    else CHECK(same_bytes(stored, t->to(DType::f16)));
  }
  finetune::LoadedModel back = finetune::load_model(dir / "h.safetensors");
  CHECK(same_bytes(back.model->conv1->weight, src.model->conv1->weight.to(DType::f16).to(DType::f32)));
  fs::remove_all(dir);
}

TEST_CASE("model file: damaged metadata is refused naming the key") {
  test::TempDir tmp("model_file");
  const fs::path dir = tmp.path;
  finetune::LoadedModel src = finetune::load_model(test::fixture("tiny_resnet18.pth"));
  fs::path good = dir / "good.safetensors", bad = dir / "bad.safetensors";
  finetune::save_model(good, *src.model, tiny_info());
  auto error_with = [&](const std::function<void(std::map<std::string, std::string>&)>& edit) {
    rewrite(good, bad, edit);
    std::string e = error_of([&] { finetune::read_model_info(bad); });
    // load_model must refuse the same file rather than guess
    std::string e2 = error_of([&] { finetune::load_model(bad); });
    CHECK_MESSAGE(e == e2, e, " vs ", e2);
    return e;
  };
  auto has = [](const std::string& s, const std::string& part) {
    INFO(s);
    CHECK(s.find(part) != std::string::npos);
  };
  has(error_with([](auto& m) { m.erase("arch"); }), "metadata key 'arch' is missing");
  has(error_with([](auto& m) { m.erase("class_names"); }), "'class_names' is missing");
  has(error_with([](auto& m) { m["arch"] = "resnet19"; }), "unknown architecture 'resnet19'");
  has(error_with([](auto& m) { m["width"] = "8px"; }), "'width' must be a positive integer, got '8px'");
  has(error_with([](auto& m) { m["num_classes"] = "-3"; }), "'num_classes' must be a positive integer");
  has(error_with([](auto& m) { m["class_names"] = "[\"a\", "; }), "'class_names' is not valid JSON");
  has(error_with([](auto& m) { m["class_names"] = "[\"a\", 2]"; }), "only strings");
  has(error_with([](auto& m) { m["class_names"] = "[\"a\", \"b\"]"; }), "lists 2 class names but num_classes is 10");
  has(error_with([](auto& m) { m["class_folders"] = "[\"1\"]"; }), "lists 1 class folders but num_classes is 10");
  has(error_with([](auto& m) { m["class_folders"] = "{}"; }), "'class_folders' must be a JSON array of strings");
  has(error_with([](auto& m) { m["mean"] = "[0.5, 0.5]"; }), "'mean' must be a JSON array of 3 numbers");
  has(error_with([](auto& m) { m["std"] = "[0.5, 0, 0.5]"; }), "'std' entries must be positive");
  // metadata that parses but contradicts the tensors
  CHECK(error_of([&] { rewrite(good, bad, [](auto& m) { m["num_classes"] = "5"; m["class_names"] = "[]"; m.erase("class_folders"); });
                      finetune::read_model_info(bad); })
            .find("needs fc.weight [5, 64], but it is [10, 64]") != std::string::npos);
  CHECK(error_of([&] { rewrite(good, bad, [](auto& m) { m["width"] = "16"; }); finetune::read_model_info(bad); })
            .find("metadata width 16 but conv1.weight is [8, 3, 7, 7]") != std::string::npos);
  // not an rtune file at all
  CHECK(error_of([&] { finetune::read_model_info(test::fixture("tiny_resnet18.safetensors")); })
            .find("is not an rtune model file") != std::string::npos);
  CHECK(error_of([&] { finetune::read_model_info(test::fixture("tiny_resnet18.pth")); }).find("tiny_resnet18.pth") !=
        std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("model file: load options and save contracts") {
  test::TempDir tmp("model_file");
  const fs::path dir = tmp.path;
  finetune::LoadedModel src = finetune::load_model(test::fixture("tiny_resnet18.pth"));
  finetune::save_model(dir / "m.safetensors", *src.model, tiny_info());
  SUBCASE("a different class count needs an explicit head replacement") {
    std::string e = error_of([&] { finetune::load_model(dir / "m.safetensors", {.num_classes = 4}); });
    CHECK(e.find("fc.weight") != std::string::npos);
    CHECK(e.find("replace the head") != std::string::npos);
    finetune::LoadedModel lm = finetune::load_model(dir / "m.safetensors", {.num_classes = 4, .replace_head = true});
    CHECK(lm.report.head_replaced);
    CHECK(lm.model->fc->weight.shape() == Shape{4, 64});
    CHECK(lm.info.num_classes == 4);
    CHECK(lm.info.class_names.empty());  // the old names belong to the old head
    CHECK(lm.info.class_folders.empty());
    CHECK(same_bytes(lm.model->conv1->weight, src.model->conv1->weight));
  }
  SUBCASE("an --arch that contradicts the file is an error, an unknown one too") {
    CHECK(error_of([&] { finetune::load_model(dir / "m.safetensors", {.arch = "resnet34"}); })
              .find("asked for resnet34 but the file holds a resnet18") != std::string::npos);
    CHECK(error_of([&] { finetune::load_model(test::fixture("tiny_resnet50.pth"), {.arch = "resnet18"}); })
              .find("inferred from its keys") != std::string::npos);
    CHECK(error_of([&] { finetune::load_model(test::fixture("tiny_resnet18.pth"), {.arch = "resnet19"}); })
              .find("unknown architecture 'resnet19'") != std::string::npos);
  }
  SUBCASE("save refuses inconsistent info") {
    finetune::ModelInfo info = tiny_info();
    info.class_names.pop_back();
    CHECK(error_of([&] { finetune::save_model(dir / "x.safetensors", *src.model, info); }).find("9 class names for 10") !=
          std::string::npos);
    info = tiny_info();
    info.extra["arch"] = "resnet50";
    CHECK(error_of([&] { finetune::save_model(dir / "x.safetensors", *src.model, info); }).find("shadow") != std::string::npos);
    info = tiny_info();
    info.arch = "resnet50";
    CHECK(error_of([&] { finetune::save_model(dir / "x.safetensors", *src.model, info); }).find("the model is a resnet18") !=
          std::string::npos);
    CHECK_FALSE(fs::exists(dir / "x.safetensors"));
  }
  SUBCASE("float64 model: loads in the requested dtype") {
    finetune::LoadedModel lm = finetune::load_model(dir / "m.safetensors", {.dtype = DType::f64});
    CHECK(lm.model->fc->weight.dtype() == DType::f64);
    CHECK(lm.model->bn1->num_batches_tracked.dtype() == DType::i64);
    CHECK(same_bytes(lm.model->fc->weight, src.model->fc->weight.to(DType::f64)));
  }
  fs::remove_all(dir);
}

// Issue 21: a weight file with 20,000 stray keys made a 249 KB error; names from files come escaped.
TEST_CASE("load_weights: the mismatch report names ten keys per list, escaped, and counts the rest") {
  models::ResNet model(models::ResNetConfig{"resnet18", 8, 10});
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& [name, slot] : model.state_dict()) tensors.emplace_back(name, slot->detach());
  tensors.erase(tensors.begin());  // conv1.weight missing
  for (int i = 0; i < 20'000; ++i) tensors.emplace_back(i == 0 ? "evil\x1b[2J" : "extra." + std::to_string(i), zeros({1}));
  const std::string err = error_of([&] { finetune::load_weights(model, tensors); });
  CHECK(err.find("missing keys (1): conv1.weight\n") != std::string::npos);
  CHECK(err.find("unexpected keys (20000): evil\\x1b[2J, extra.1, extra.10, ") != std::string::npos);
  CHECK(err.find(", … and 19990 more\n") != std::string::npos);
  CHECK(err.find('\x1b') == std::string::npos);
  CHECK(err.size() < 1000);
}
