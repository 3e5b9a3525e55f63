// `rtune convert` (finetune/convert.h): every .pth flavour PyTorch writes converts, the converted
// tensors equal the source exactly, and .pth -> model file -> ResNet gives bit-identical eval logits to
// loading the .pth directly. Class-name files, wrong counts, unknown archs and hostile pickles give clear
// errors; the built `rtune` binary is run for the CLI path (exit codes, usage errors).
#include <sys/wait.h>
#include <unistd.h>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include "engine/autograd.h"
#include "io/formats/safetensors.h"
#include "tests/core/test_util.h"
#include "tests/io/test_pth_builders.h"
#include "finetune/convert.h"

using namespace rtune;
namespace fs = std::filesystem;

namespace {
using test::error_of;

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  Tensor x = a.contiguous(), y = b.contiguous();
  return std::memcmp(x.raw_data(), y.raw_data(), size_t(x.numel()) * dtype_size(x.dtype())) == 0;
}

struct Run {
  int code;
  std::string output;
};
// Runs the built binary with stdout and stderr captured.
Run run_rtune(const std::string& args) {
  std::string cmd = std::string("'") + RTUNE_BIN + "' " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

struct Flavour {
  const char* file;
  const char* arch;
  int64_t classes;
  const char* note;  // a reader note convert must pass on ("" = none expected)
};
const Flavour kFlavours[] = {
    {"tiny_resnet18.pth", "resnet18", 10, ""},
    {"tiny_resnet18_legacy.pth", "resnet18", 10, ""},
    {"tiny_resnet18_checkpoint.pth", "resnet18", 10, "'state_dict'"},
    {"tiny_resnet18_dataparallel.pth", "resnet18", 10, "stripped 'module.' prefix"},
    {"tiny_resnet18_fp16.pth", "resnet18", 10, ""},
    {"tiny_resnet18.safetensors", "resnet18", 10, ""},
    {"tiny_resnet50.pth", "resnet50", 7, ""},
};
}  // namespace

TEST_CASE("convert: every .pth flavour converts and the tensors equal the source exactly") {
  test::TempDir tmp("convert");
  const fs::path dir = tmp.path;
  for (const Flavour& fl : kFlavours) {
    CAPTURE(fl.file);
    finetune::ConvertOptions o{.input = test::fixture(fl.file), .output = dir / (std::string(fl.file) + ".safetensors")};
    finetune::ConvertResult r = finetune::convert_model(o);
    CHECK(r.arch_inferred);
    CHECK(r.info.arch == fl.arch);
    CHECK(r.info.width == 8);
    CHECK(r.info.num_classes == fl.classes);
    CHECK(r.info.source == fl.file);
    if (*fl.note) {
      bool found = false;
      for (auto& n : r.notes) found |= n.find(fl.note) != std::string::npos;
      CHECK_MESSAGE(found, "no note mentioning ", fl.note);
    }
    bool fp16 = std::string(fl.file).find("fp16") != std::string::npos;
    CHECK(r.dtype_changes.size() == (fp16 ? 1u : 0u));
    if (fp16) CHECK(r.dtype_changes.begin()->first == "float16 -> float32");

    finetune::WeightFile src = finetune::read_weight_file(test::fixture(fl.file));
    io::SafetensorsFile out = io::SafetensorsFile::open(o.output);
    CHECK(out.tensors().size() == src.tensors.size());
    CHECK(r.tensor_count == src.tensors.size());
    for (auto& [name, t] : src.tensors) {
      CAPTURE(name);
      const io::SafetensorsView* v = out.find(name);
      REQUIRE(v != nullptr);
      Tensor got = from_bytes(v->bytes.data(), v->bytes.size(), v->shape, v->dtype);
      // float32 and int64 sources are copied bit for bit; float16 widens exactly to float32
      Tensor expect = is_floating(t.dtype()) ? t.to(DType::f32) : t;
      CHECK(same_bytes(got, expect));
    }
    std::string text = finetune::describe(r, o);
    CHECK(text.find(fl.arch) != std::string::npos);
    CHECK(text.find(o.output.string()) != std::string::npos);
  }
  fs::remove_all(dir);
}

TEST_CASE("convert: .pth -> model file -> ResNet gives bit-identical eval logits to loading the .pth") {
  test::TempDir tmp("convert");
  const fs::path dir = tmp.path;
  for (auto [file, arch, classes] : {std::tuple{"tiny_resnet18.pth", "resnet18", 10}, {"tiny_resnet50.pth", "resnet50", 7}}) {
    CAPTURE(file);
    Rng rng(11);
    Tensor x = randn({2, 3, 40, 40}, rng);
    models::ResNet direct(models::ResNetConfig{arch, 8, classes});
    finetune::load_weights(direct, finetune::read_weight_file(test::fixture(file)).tensors);
    direct.eval();
    finetune::convert_model({.input = test::fixture(file), .output = dir / "m.safetensors"});
    finetune::LoadedModel lm = finetune::load_model(dir / "m.safetensors");
    CHECK_FALSE(lm.model->is_training());
    NoGradGuard ng;
    Tensor a = direct.forward(x), b = lm.model->forward(x);
    CHECK(a.shape() == Shape{2, classes});
    CHECK(same_bytes(a, b));
  }
  fs::remove_all(dir);
}

TEST_CASE("class names for image folders: by folder name when the keys are the folders, else by position") {
  test::TempDir tmp("class_folders");
  auto write_json = [&](const std::string& name, const nlohmann::json& j) {
    write_file(tmp.path / name, j.dump());
    return tmp.path / name;
  };
  // 12 numbered folders in ImageFolder order (sorted as text): "1", "10", "11", "12", "2", …, "9".
  std::vector<std::string> numbered;
  for (int i = 1; i <= 12; ++i) numbered.push_back(std::to_string(i));
  std::sort(numbered.begin(), numbered.end());
  REQUIRE(numbered[1] == "10");
  SUBCASE("cat_to_name.json keyed by folder name: each folder gets its own key's name") {
    nlohmann::json j;
    for (int i = 1; i <= 12; ++i) j[std::to_string(i)] = "flower " + std::to_string(i);
    finetune::ClassNames cn = finetune::names_for_folders(write_json("cat_to_name.json", j), numbered);
    REQUIRE(cn.names.size() == 12);
    for (size_t k = 0; k < 12; ++k) CHECK(cn.names[k] == "flower " + numbered[k]);  // folder "10" -> "flower 10"
    CHECK(cn.note.find("by folder name") != std::string::npos);
  }
  SUBCASE("word folders keyed by name, in any order") {
    std::vector<std::string> folders{"cat", "dog", "fox"};
    finetune::ClassNames cn = finetune::names_for_folders(write_json("w.json", {{"fox", "Fox"}, {"cat", "Cat"}, {"dog", "Dog"}}), folders);
    CHECK(cn.names == std::vector<std::string>{"Cat", "Dog", "Fox"});
  }
  SUBCASE("index keys (0- and 1-based) over word folders go by position over the sorted folders") {
    std::vector<std::string> folders;  // "class1", "class10", "class11", "class12", "class2", …
    for (int i = 1; i <= 12; ++i) folders.push_back("class" + std::to_string(i));
    std::sort(folders.begin(), folders.end());
    nlohmann::json zero, one;
    for (int i = 0; i < 12; ++i) zero[std::to_string(i)] = "name " + std::to_string(i), one[std::to_string(i + 1)] = "name " + std::to_string(i);
    for (const auto& j : {zero, one}) {
      finetune::ClassNames cn = finetune::names_for_folders(write_json("i.json", j), folders);
      REQUIRE(cn.names.size() == 12);
      for (size_t k = 0; k < 12; ++k) CHECK(cn.names[k] == "name " + std::to_string(k));  // position k: folders[k]
      CHECK(cn.note.find("class indices") != std::string::npos);
    }
  }
  SUBCASE("a text file goes by position and must have one name per folder") {
    write_file(tmp.path / "n.txt", "a\nb\nc\n");
    CHECK(finetune::names_for_folders(tmp.path / "n.txt", {"x", "y", "z"}).names == std::vector<std::string>{"a", "b", "c"});
    CHECK(error_of([&] { finetune::names_for_folders(tmp.path / "n.txt", {"x", "y"}); }).find("3 names for 2 class folders") !=
          std::string::npos);
  }
  SUBCASE("keys that name some folders but not all: an error naming the missing and extra keys") {
    nlohmann::json j;
    for (int i = 1; i <= 11; ++i) j[std::to_string(i)] = "flower " + std::to_string(i);
    j["13"] = "flower 13";  // folder "12" has no key, key "13" no folder
    std::string e = error_of([&] { finetune::names_for_folders(write_json("bad.json", j), numbered); });
    CHECK(e.find("folders with no key: 12") != std::string::npos);
    CHECK(e.find("keys with no folder: 13") != std::string::npos);
  }
  SUBCASE("0-based index keys over numbered folders are ambiguous: an error, not a silent shift") {
    nlohmann::json j;
    for (int i = 0; i < 12; ++i) j[std::to_string(i)] = "n" + std::to_string(i);
    std::string e = error_of([&] { finetune::names_for_folders(write_json("zero.json", j), numbered); });
    CHECK(e.find("keys with no folder: 0") != std::string::npos);
  }
  SUBCASE("keys that are neither folder names nor indices") {
    std::string e = error_of([&] { finetune::names_for_folders(write_json("odd.json", {{"cow", "Cow"}, {"pig", "Pig"}}), {"cat", "dog"}); });
    CHECK(e.find("folders with no key: cat, dog") != std::string::npos);
    CHECK(e.find("keys with no folder: cow, pig") != std::string::npos);
    CHECK(e.find("not a class index") != std::string::npos);
  }
}

TEST_CASE("convert: class names from text and JSON files") {
  test::TempDir tmp("convert");
  const fs::path dir = tmp.path;
  auto convert_with = [&](const std::string& name, const std::string& text) {
    write_file(dir / name, text);
    return finetune::convert_model(
        {.input = test::fixture("tiny_resnet18.pth"), .output = dir / "m.safetensors", .classes = dir / name});
  };
  std::vector<std::string> ten;
  for (int i = 0; i < 10; ++i) ten.push_back("c" + std::to_string(i));
  SUBCASE("text: one per line, CRLF and trailing blank lines tolerated") {
    finetune::ConvertResult r = convert_with("n.txt", "\xEF\xBB\xBF" "c0\r\nc1\r\nc2\nc3\nc4\nc5\nc6\nc7\nc8\nc9\n\n");
    CHECK(r.info.class_names == ten);
    CHECK(finetune::read_model_info(dir / "m.safetensors").class_names == ten);
  }
  SUBCASE("JSON list and 0-based object give the same names") {
    CHECK(convert_with("l.json", nlohmann::json(ten).dump()).info.class_names == ten);
    nlohmann::json obj;
    for (int i = 9; i >= 0; --i) obj[std::to_string(i)] = ten[size_t(i)];
    CHECK(convert_with("o.json", obj.dump()).info.class_names == ten);
  }
  SUBCASE("1-based object (e.g. Oxford flowers' cat_to_name.json) is read as 1-based and says so") {
    nlohmann::json obj;
    for (int i = 1; i <= 10; ++i) obj[std::to_string(i)] = ten[size_t(i - 1)];
    finetune::ConvertResult r = convert_with("f.json", obj.dump());
    CHECK(r.info.class_names == ten);
    REQUIRE_FALSE(r.notes.empty());
    CHECK(r.notes.back().find("1-based") != std::string::npos);
  }
  SUBCASE("ImageNet's {\"0\": [wnid, name]} takes the name") {
    nlohmann::json obj;
    for (int i = 0; i < 10; ++i) obj[std::to_string(i)] = {"n0" + std::to_string(i), ten[size_t(i)]};
    CHECK(convert_with("imagenet.json", obj.dump()).info.class_names == ten);
  }
  SUBCASE("errors: wrong count, holes, bad keys, blank lines") {
    std::string e = error_of([&] { convert_with("nine.txt", "a\nb\nc\nd\ne\nf\ng\nh\ni\n"); });
    CHECK(e.find("has 9 class name(s) but the weights have 10 classes") != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "m.safetensors"));
    CHECK(error_of([&] { convert_with("hole.json", R"({"0":"a","2":"b"})"); }).find("keys must be the class indices") !=
          std::string::npos);
    CHECK(error_of([&] { convert_with("key.json", R"({"cat":"a"})"); }).find("key 'cat' is not a class index") !=
          std::string::npos);
    CHECK(error_of([&] { convert_with("bad.json", "[\"a\","); }).find("not valid JSON") != std::string::npos);
    CHECK(error_of([&] { convert_with("blank.txt", "a\n\nb\n"); }).find("line 2 is empty") != std::string::npos);
  }
  fs::remove_all(dir);
}

TEST_CASE("convert: errors are clear and leave no output behind") {
  test::TempDir tmp("convert");
  const fs::path dir = tmp.path;
  fs::path out = dir / "m.safetensors";
  SUBCASE("unknown or contradicting --arch") {
    CHECK(error_of([&] { finetune::convert_model({.input = test::fixture("tiny_resnet18.pth"), .output = out, .arch = "resnet19"}); })
              .find("unknown architecture 'resnet19'") != std::string::npos);
    CHECK(error_of([&] { finetune::convert_model({.input = test::fixture("tiny_resnet18.pth"), .output = out, .arch = "resnet34"}); })
              .find("asked for resnet34 but the file holds a resnet18") != std::string::npos);
  }
  SUBCASE("hostile pickle: a non-allow-listed global is refused by name") {
    using namespace pthb;
    std::string p = dict({{"conv1.weight", tensor("0", 6, 0, {6}, {1})},
                          {"x", glob("os", "system") + str("touch /tmp/pwned") + "\x85R"}});
    std::vector<std::byte> b = pth(p, {{"0", floats({0, 1, 2, 3, 4, 5})}});
    write_file(dir / "evil.pth", std::string(reinterpret_cast<const char*>(b.data()), b.size()));
    CHECK(error_of([&] { finetune::convert_model({.input = dir / "evil.pth", .output = out}); })
              .find("refusing global os.system") != std::string::npos);
  }
  SUBCASE("not a ResNet: inference names the missing key") {
    using namespace pthb;
    std::vector<std::byte> b = pth(dict({{"w", tensor("0", 6, 0, {2, 3}, {3, 1})}}), {{"0", floats({0, 1, 2, 3, 4, 5})}});
    write_file(dir / "other.pth", std::string(reinterpret_cast<const char*>(b.data()), b.size()));
    CHECK(error_of([&] { finetune::convert_model({.input = dir / "other.pth", .output = out}); })
              .find("no 'conv1.weight' among the weights") != std::string::npos);
  }
  SUBCASE("refuses to overwrite the input, even through another spelling of its path") {
    fs::copy_file(test::fixture("tiny_resnet18.safetensors"), dir / "in.safetensors");
    auto before = fs::file_size(dir / "in.safetensors");
    CHECK(error_of([&] { finetune::convert_model({.input = dir / "in.safetensors", .output = dir / "." / "in.safetensors"}); })
              .find("refusing to overwrite the input") != std::string::npos);
    CHECK(fs::file_size(dir / "in.safetensors") == before);
  }
  SUBCASE("--key picks the nested state dict; a wrong key is named") {
    finetune::ConvertResult r =
        finetune::convert_model({.input = test::fixture("tiny_resnet18_checkpoint.pth"), .output = out, .key = "state_dict"});
    CHECK(r.info.arch == "resnet18");
    fs::remove(out);
    CHECK(error_of([&] { finetune::convert_model({.input = test::fixture("tiny_resnet18_checkpoint.pth"), .output = out, .key = "ema"}); })
              .find("ema") != std::string::npos);
  }
  SUBCASE("missing output folder") {
    CHECK(error_of([&] { finetune::convert_model({.input = test::fixture("tiny_resnet18.pth"), .output = dir / "no" / "m.safetensors"}); })
              .find("does not exist") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(out));
  for (auto& e : fs::directory_iterator(dir))  // the atomic writer leaves no temp files either
    CHECK(e.path().filename().string().find(".tmp") == std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("convert CLI: the built rtune binary converts, and bad arguments are usage errors") {
  test::TempDir tmp("convert");
  const fs::path dir = tmp.path;
  write_file(dir / "names.txt", "a\nb\nc\nd\ne\nf\ng\n");
  Run ok = run_rtune(fmt::format("convert '{}' '{}' --classes '{}' --input-size 160", test::fixture("tiny_resnet50.pth"),
                                 (dir / "r50.safetensors").string(), (dir / "names.txt").string()));
  CHECK_MESSAGE(ok.code == 0, ok.output);
  CHECK(ok.output.find("resnet50 (width 8, 7 classes), inferred from the keys") != std::string::npos);
  finetune::ModelInfo info = finetune::read_model_info(dir / "r50.safetensors");
  CHECK(info.input_size == 160);
  CHECK(info.class_names.size() == 7);

  Run fp16 = run_rtune(fmt::format("convert '{}' '{}'", test::fixture("tiny_resnet18_fp16.pth"), (dir / "h.safetensors").string()));
  CHECK_MESSAGE(fp16.code == 0, fp16.output);
  CHECK(fp16.output.find("float16 -> float32") != std::string::npos);

  Run none = run_rtune("convert");
  CHECK(none.code != 0);
  CHECK(none.output.find("input is required") != std::string::npos);
  Run arch = run_rtune(fmt::format("convert '{}' '{}' --arch resnet19", test::fixture("tiny_resnet18.pth"),
                                   (dir / "x.safetensors").string()));
  CHECK(arch.code != 0);
  CHECK(arch.output.find("resnet19") != std::string::npos);
  Run missing = run_rtune(fmt::format("convert '{}' '{}'", (dir / "nope.pth").string(), (dir / "x.safetensors").string()));
  CHECK(missing.code != 0);
  CHECK(missing.output.find("nope.pth") != std::string::npos);
  Run summary = run_rtune(fmt::format("summary --weights '{}' --totals-only", (dir / "r50.safetensors").string()));
  CHECK_MESSAGE(summary.code == 0, summary.output);
  CHECK(summary.output.find("input 3x160x160") != std::string::npos);  // the model file's input size
  using namespace pthb;
  std::vector<std::byte> evil = pth("\x80\x02" + glob("os", "system") + str("touch /tmp/pwned") + "\x85R.", {});
  write_file(dir / "evil.pth", std::string(reinterpret_cast<const char*>(evil.data()), evil.size()));
  Run hostile = run_rtune(fmt::format("convert '{}' '{}'", (dir / "evil.pth").string(), (dir / "x.safetensors").string()));
  CHECK(hostile.code == 1);
  CHECK(hostile.output.find("refusing global os.system") != std::string::npos);
  Run same = run_rtune(fmt::format("convert '{0}' '{0}'", (dir / "r50.safetensors").string()));
  CHECK(same.code == 1);  // an rtune::Error, not a crash
  CHECK(same.output.find("refusing to overwrite the input") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "x.safetensors"));
  fs::remove_all(dir);
}
