// `rtune summary` (finetune/summary.h) against torchvision: parameter counts and state_dict key counts
// of all five ResNets (tests/fixtures/torchvision_resnet_facts.json, from torchvision 0.26), and
// conv+linear MACs at 224 against torchvision's model table (resnet18 1.81 G, resnet50 4.09 G; the
// same numbers fvcore/ptflops count for conv+linear). Rows must account for every parameter once.
#include <sys/wait.h>
#include <cstdio>
#include <fstream>
#include <set>
#include <nlohmann/json.hpp>
#include "finetune/model_file.h"
#include "tests/core/test_util.h"
#include "finetune/summary.h"

using namespace rtune;

namespace {
nlohmann::json facts() {
  std::ifstream f(test::fixture("torchvision_resnet_facts.json"));
  REQUIRE(f.good());
  return nlohmann::json::parse(f);
}

const finetune::LayerRow& row(const finetune::ModelSummary& s, const std::string& name) {
  const finetune::LayerRow* found = nullptr;  // the last row of that name (e.g. a block's final relu)
  for (const auto& r : s.rows)
    if (r.name == name) found = &r;
  REQUIRE_MESSAGE(found != nullptr, "no row ", name);
  return *found;
}

// Every parameter belongs to exactly one row: "<row>.weight" / "<row>.bias".
void check_rows_cover_parameters(models::ResNet& m, const finetune::ModelSummary& s) {
  std::map<std::string, int64_t> row_params;
  int64_t sum = 0;
  for (const auto& r : s.rows) {
    if (r.params) CHECK_MESSAGE(row_params.emplace(r.name, r.params).second, "parameters counted twice in ", r.name);
    sum += r.params;
    CHECK(r.macs >= 0);
    CHECK(shape_numel(r.output) > 0);
  }
  CHECK(sum == s.params);
  std::map<std::string, int64_t> by_module;
  for (auto& [name, p] : m.named_parameters()) by_module[name.substr(0, name.rfind('.'))] += p->numel();
  CHECK(by_module == row_params);
}

}  // namespace

TEST_CASE("summary: parameter and state_dict key counts of all five torchvision ResNets") {
  nlohmann::json f = facts();
  for (const char* arch : {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"}) {
    CAPTURE(arch);
    models::ResNet m(models::ResNetConfig{arch, 64, 1000});
    finetune::ModelSummary s = finetune::summarize(m, 224, 224);
    CHECK(s.params == f[arch]["params_1000_classes"].get<int64_t>());
    CHECK(s.trainable_params == s.params);
    CHECK(s.state_dict_keys == f[arch]["state_dict_keys"].get<int64_t>());
    std::vector<std::string> first;
    for (auto& [n, t] : m.state_dict())
      if (first.size() < 12) first.push_back(n);
    CHECK(first == f[arch]["first_keys"].get<std::vector<std::string>>());
    check_rows_cover_parameters(m, s);
    // every spatial layer ends at 7x7 before the pool: 224 / 32
    int64_t feat = 512 * (models::is_bottleneck_arch(arch) ? 4 : 1);
    CHECK(s.rows[s.rows.size() - 3].output == Shape{feat, 7, 7});
    CHECK(row(s, "avgpool").output == Shape{feat, 1, 1});
    CHECK(row(s, "fc").output == Shape{1000});
  }
}

TEST_CASE("summary: MACs at 224 match torchvision's table (resnet18 1.814 G, resnet50 4.089 G)") {
  for (auto [arch, gmacs] : {std::pair{"resnet18", 1.814}, {"resnet50", 4.089}}) {
    CAPTURE(arch);
    models::ResNet m(models::ResNetConfig{arch, 64, 1000});
    finetune::ModelSummary s = finetune::summarize(m, 224, 224);
    CHECK(double(s.macs) / 1e9 == doctest::Approx(gmacs).epsilon(0.0005 / gmacs));
    // the stem by hand: 64 x 112 x 112 outputs, each 3 x 7 x 7 multiply-adds
    CHECK(row(s, "conv1").macs == 64 * 112 * 112 * 3 * 7 * 7);
    CHECK(row(s, "conv1").output == Shape{64, 112, 112});
    CHECK(row(s, "maxpool").output == Shape{64, 56, 56});
    CHECK(row(s, "fc").macs == m.feature_dim() * 1000);
    CHECK(row(s, "bn1").macs == 0);
    CHECK(row(s, "layer2.0.downsample.0").macs == (models::is_bottleneck_arch(arch) ? 512 * 28 * 28 * 256 : 128 * 28 * 28 * 64));
    // MACs scale with the pixel count, except fc which does not see the image size
    finetune::ModelSummary twice = finetune::summarize(m, 448, 448);
    CHECK(4 * (s.macs - row(s, "fc").macs) == twice.macs - row(twice, "fc").macs);
  }
}

TEST_CASE("summary: rows follow torchvision's forward order and names") {
  models::ResNet m(models::ResNetConfig{"resnet50", 8, 7});
  finetune::ModelSummary s = finetune::summarize(m, 64, 48);
  std::vector<std::string> first;
  for (size_t i = 0; i < 16; ++i) first.push_back(s.rows[i].name);
  CHECK(first == std::vector<std::string>{"conv1", "bn1", "relu", "maxpool", "layer1.0.conv1", "layer1.0.bn1",
                                          "layer1.0.relu", "layer1.0.conv2", "layer1.0.bn2", "layer1.0.relu",
                                          "layer1.0.conv3", "layer1.0.bn3", "layer1.0.downsample.0",
                                          "layer1.0.downsample.1", "layer1.0.relu", "layer1.1.conv1"});
  CHECK(s.rows[14].detail == "out + identity");
  CHECK(row(s, "layer2.0.conv2").detail == "16->16 k3 s2 p1");  // v1.5: the stride sits on the 3x3
  CHECK(row(s, "layer2.0.conv2").output == Shape{16, 8, 6});     // 64x48 input: 16x12 after the stem, halved
  CHECK(row(s, "layer4.2.relu").output == Shape{256, 2, 2});
  CHECK(s.rows.back().name == "fc");
  int64_t act = 0;
  for (const auto& r : s.rows) act += shape_numel(r.output);
  CHECK(s.activation_bytes() == act * 4);
  check_rows_cover_parameters(m, s);
  std::string text = finetune::format_summary(s);
  CHECK(text.find("layer1.0.downsample.0") != std::string::npos);
  CHECK(text.find("Total params:") != std::string::npos);
}

TEST_CASE("summary: a model read from weights") {
  finetune::LoadedModel lm = finetune::load_model(test::fixture("tiny_resnet18.pth"));
  finetune::ModelSummary s = finetune::summarize(*lm.model, 64, 64);
  int64_t in_file = 0;
  for (auto& [n, t] : finetune::read_weight_file(test::fixture("tiny_resnet18.pth")).tensors)
    if (n.find("running_") == std::string::npos && n.find("num_batches") == std::string::npos) in_file += t.numel();
  CHECK(s.params == in_file);
  CHECK(s.num_classes == 10);
  CHECK(s.width == 8);
  // freezing shows up as non-trainable parameters
  for (auto& [n, p] : lm.model->named_parameters())
    if (n.rfind("fc.", 0) != 0) p->set_requires_grad(false);
  CHECK(finetune::summarize(*lm.model, 64, 64).trainable_params == 64 * 10 + 10);
}

TEST_CASE("summary CLI: the built binary prints the table; no --arch and no --weights is a usage error") {
  auto run = [](const std::string& args) {
    std::string cmd = std::string("'") + RTUNE_BIN + "' " + args + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    std::string out;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    int st = ::pclose(p);
    return std::pair{WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
  };
  auto [code, out] = run("summary --arch resnet50");
  CHECK_MESSAGE(code == 0, out);
  CHECK(out.find("25,557,032") != std::string::npos);
  CHECK(out.find("layer4.2.conv3") != std::string::npos);
  auto [c2, o2] = run(fmt::format("summary --weights '{}' --totals-only --input 64x32", test::fixture("tiny_resnet50.pth")));
  CHECK_MESSAGE(c2 == 0, o2);
  CHECK(o2.find("resnet50 (width 8, 7 classes), input 3x64x32") != std::string::npos);
  CHECK(o2.find("layer1.0.conv1") == std::string::npos);
  auto [c3, o3] = run("summary");
  CHECK(c3 != 0);
  CHECK(o3.find("--arch") != std::string::npos);
  auto [c4, o4] = run("summary --arch resnet50 --input 22x");
  CHECK(c4 != 0);
  CHECK(o4.find("224x160") != std::string::npos);
}
