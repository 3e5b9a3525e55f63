// Writes the generated part of the seed corpora (tests/fuzz/<harness>/gen_*): small valid inputs for
// the weight-format harnesses, made with the builders the tests use (tests/io/test_pth_builders.h,
// serialize_safetensors, info_to_metadata). The image corpora are fixture files, copied as they are.
// Usage: fuzz_make_seeds <tests/fuzz folder>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "io/formats/safetensors.h"
#include "finetune/model_file.h"
#include "tests/io/test_pth_builders.h"

namespace fs = std::filesystem;
using namespace rtune;
using namespace std::string_literals;  // pickle literals hold NUL bytes

namespace {

void write(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / ("gen_" + name), std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}
void write(const fs::path& dir, const std::string& name, const std::vector<std::byte>& bytes) {
  write(dir, name, std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

// A safetensors file of the given tensors (all f32 unless named otherwise) and metadata.
std::vector<std::byte> safetensors(const std::vector<std::pair<std::string, std::vector<int64_t>>>& shapes,
                                   const std::map<std::string, std::string>& meta, DType dtype = DType::f32) {
  std::vector<std::vector<std::byte>> data;
  std::vector<io::SafetensorsEntry> entries;
  data.reserve(shapes.size());
  for (const auto& [name, shape] : shapes) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    data.emplace_back(size_t(n) * dtype_size(dtype), std::byte{0x3f});
    entries.push_back({name, dtype, shape, data.back()});
  }
  return io::serialize_safetensors(entries, meta);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <tests/fuzz folder>\n", argv[0]);
    return 2;
  }
  const fs::path out = argv[1];
  using pthb::tensor;
  const std::vector<float> six = {0, 1, 2, 3, 4, 5};
  // The pickles: a state dict of a strided view and a double tensor, a nested training checkpoint,
  // and one with the other rebuild functions and plain values.
  const std::string two = pthb::dict({{"a", tensor("0", 6, 1, {2, 2}, {1, 2})}, {"b", tensor("1", 6, 0, {6}, {1}, "DoubleStorage")}});
  const std::string nested = pthb::dict({{"epoch", "K\x03"}, {"state_dict", two.substr(2, two.size() - 3)}});
  const std::string plain = "\x80\x02}(" + pthb::str("module.w") + tensor("0", 6, 0, {3, 2}, {2, 1}, "HalfStorage") +
                            pthb::str("note") + pthb::str("text") + pthb::str("list") + "](K\x01G?\xf0\0\0\0\0\0\0\x88\x89Ne"s +
                            pthb::str("set") + pthb::glob("builtins", "set") + "](K\x01K\x02" "e\x85R" + "u.";
  const std::vector<std::pair<std::string, std::string>> storages = {{"0", pthb::floats(six)}, {"1", std::string(48, '\x01')}};
  for (const auto& [name, pickle] : {std::pair{"two", two}, {"nested", nested}, {"plain", plain}}) {
    write(out / "pickle", std::string(name) + ".pkl", pickle);
    write(out / "pth", std::string(name) + ".pth", pthb::pth(pickle, storages));
    write(out / "pth", std::string(name) + "_zip64_nocrc.pth", pthb::pth(pickle, storages, {.zip64 = true, .zero_crc = true}));
  }
  write(out / "pth", "legacy.pth", pthb::legacy(two, {{"0", 6, pthb::floats(six)}, {"1", 6, std::string(48, '\x01')}}));
  write(out / "pickle", "legacy_stream.pkl", pthb::legacy(two, {}));  // five pickles in a row
  write(out / "zip", "plain.zip", pthb::zip({{"a/data.pkl", two}, {"a/data/0", "0123"}}));
  write(out / "zip", "zip64.zip", pthb::zip({{"x", "payload"}, {"y", ""}}, {.zip64 = true}));
  write(out / "zip", "nopad_nocrc.zip", pthb::zip({{"only", "bytes"}}, {.zero_crc = true, .pad = false}));

  write(out / "safetensors", "two.safetensors", safetensors({{"a", {2, 3}}, {"b", {1}}}, {{"k", "v"}}));
  write(out / "safetensors", "bf16.safetensors", safetensors({{"w", {4}}, {"empty", {0, 2}}}, {}, DType::bf16));
  write(out / "safetensors", "i64.safetensors", safetensors({{"n", {}}}, {}, DType::i64));
  write(out / "checkpoint", "ckpt.safetensors",
        safetensors({{"w", {2, 2}}, {"opt.m", {2}}},
                    {{"format", "rtune-checkpoint"}, {"rtune.state", R"({"epoch":3,"lr":[0.1,0.01],"name":"x"})"}}));
  finetune::ModelInfo info{.arch = "resnet18", .width = 1, .num_classes = 2, .class_names = {"cat", "dog"}, .source = "gen"};
  write(out / "model_file", "resnet18_w1.safetensors",
        safetensors({{"conv1.weight", {1, 3, 7, 7}}, {"fc.weight", {2, 8}}}, finetune::info_to_metadata(info)));
  info = {.arch = "resnet50", .width = 2, .num_classes = 3, .extra = {{"note", "n"}}};
  write(out / "model_file", "resnet50_w2.safetensors",
        safetensors({{"conv1.weight", {2, 3, 7, 7}}, {"fc.weight", {3, 64}}}, finetune::info_to_metadata(info)));
  return 0;
}
