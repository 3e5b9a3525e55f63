// The trainer's pieces: batch conversion equals ToTensor + Normalize per sample, freeze specs and the
// frozen-BN policy, parameter groups and LR multipliers, top-k metrics and the confusion matrix.
#include <algorithm>
#include <doctest/doctest.h>
#include "finetune/batch.h"
#include "finetune/freeze.h"
#include "finetune/metrics.h"
#include "finetune/optim_config.h"
#include "tests/core/test_util.h"

using namespace rtune;

TEST_CASE("images_to_tensor equals io::to_tensor (ToTensor + Normalize) for every sample, bit for bit") {
  io::Batch b;
  b.size = 2, b.height = 3, b.width = 5;
  for (int i = 0; i < 2 * 3 * 5 * 3; ++i) b.images.push_back(uint8_t((i * 37 + 11) % 256));
  b.labels = {1, 0};
  Tensor x = finetune::images_to_tensor(b, io::kImageNetNormalize);
  REQUIRE(x.shape() == Shape{2, 3, 3, 5});
  auto got = x.to_vector<float>();
  for (int i = 0; i < 2; ++i) {
    io::Image img(3, 5);
    std::copy_n(b.images.begin() + i * 45, 45, img.pixels.begin());
    auto ref = io::to_tensor(img, &io::kImageNetNormalize);
    for (size_t k = 0; k < ref.size(); ++k) REQUIRE(got[size_t(i) * 45 + k] == ref[k]);
  }
  Tensor y = finetune::labels_to_tensor(b);
  CHECK(y.to_vector<int64_t>() == std::vector<int64_t>{1, 0});
  b.images.pop_back();
  CHECK_THROWS_AS(finetune::images_to_tensor(b, io::kImageNetNormalize), Error);
}

TEST_CASE("images_to_tensor: channels-last and f64/bf16 outputs hold the same float32 values") {
  io::Batch b;
  b.size = 3, b.height = 4, b.width = 7;
  for (int i = 0; i < 3 * 4 * 7 * 3; ++i) b.images.push_back(uint8_t((i * 53 + 5) % 256));
  Tensor ref = finetune::images_to_tensor(b, io::kImageNetNormalize);
  REQUIRE(ref.is_contiguous());
  const MemoryFormat nhwc = MemoryFormat::channels_last;
  Tensor cl = finetune::images_to_tensor(b, io::kImageNetNormalize, DType::f32, Device::cpu(), nhwc);
  CHECK(cl.is_contiguous(nhwc));
  CHECK(cl.to_vector<float>() == ref.to_vector<float>());
  Tensor wide = finetune::images_to_tensor(b, io::kImageNetNormalize, DType::f64);
  CHECK(wide.to_vector<double>() == ref.to(DType::f64).to_vector<double>());  // widened, not recomputed
  Tensor half = finetune::images_to_tensor(b, io::kImageNetNormalize, DType::bf16, Device::cpu(), nhwc);
  CHECK(half.to_vector<double>() == ref.to(DType::bf16).to_vector<double>());  // rounded once
  CHECK_THROWS_AS(finetune::images_to_tensor(b, io::kImageNetNormalize, DType::i64), Error);
}

TEST_CASE("freeze specs parse, and reject typos") {
  CHECK(finetune::parse_freeze("none").kind == finetune::FreezeSpec::Kind::none);
  CHECK(finetune::parse_freeze("backbone").kind == finetune::FreezeSpec::Kind::backbone);
  auto u = finetune::parse_freeze("until=layer3");
  CHECK(u.until == "layer3");
  auto p = finetune::parse_freeze("conv1,bn1,layer1");
  CHECK(p.prefixes == std::vector<std::string>{"conv1", "bn1", "layer1"});
  CHECK(p.str() == "conv1,bn1,layer1");
  CHECK_THROWS_AS(finetune::parse_freeze(""), Error);
  CHECK_THROWS_AS(finetune::parse_freeze("until=layer9"), Error);
  CHECK_THROWS_AS(finetune::parse_freeze("until=fc"), Error);
  CHECK_THROWS_AS(finetune::parse_freeze("conv1,,bn1"), Error);
  CHECK_THROWS_AS(finetune::parse_frozen_bn("sometimes"), Error);
  CHECK(finetune::is_frozen(u, "layer3.1.bn2.weight"));
  CHECK_FALSE(finetune::is_frozen(u, "layer4.0.conv1.weight"));
  CHECK_FALSE(finetune::is_frozen(u, "fc.bias"));
  CHECK(finetune::is_frozen(u, "conv1.weight"));
  // "layer1" is a whole component: it must not freeze a (hypothetical) layer10.
  CHECK_FALSE(finetune::is_frozen(finetune::parse_freeze("layer1"), "layer10.0.conv1.weight"));
}

TEST_CASE("apply_freeze: requires_grad, BN policy, and two LR groups") {
  models::ResNet m({"resnet18", 4, 3});
  auto r = finetune::apply_freeze(m, finetune::parse_freeze("until=layer3"), finetune::FrozenBN::eval);
  int64_t total = 0;
  for (auto& [n, p] : m.named_parameters()) {
    total += p->numel();
    CAPTURE(n);
    bool head_side = n.rfind("layer4.", 0) == 0 || n.rfind("fc.", 0) == 0;
    CHECK(p->requires_grad() == head_side);
  }
  CHECK(r.frozen_params + r.trainable_params == total);
  CHECK(m.bn1->use_running_stats);
  for (auto& [n, mod] : m.named_modules()) {
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(mod)) {
      CAPTURE(n);
      CHECK(bn->use_running_stats == (n.rfind("layer4", 0) != 0));
    }
  }
  finetune::OptimConfig oc;
  oc.kind = "adamw";
  oc.lr = 1e-3;
  oc.lr_mult = finetune::parse_lr_mult("backbone=0.1");
  auto groups = finetune::make_param_groups(m, oc, oc.lr);
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].name == "backbone");
  CHECK(groups[0].lr == doctest::Approx(1e-4));
  CHECK(groups[1].params.size() == 2);  // fc.weight, fc.bias
  CHECK(groups[0].params.size() + groups[1].params.size() < m.named_parameters().size());
  CHECK(groups[1].momentum == 0.9);  // Adam's beta1 is the group's momentum
  // policy train: frozen parts keep batch statistics
  finetune::apply_freeze(m, finetune::parse_freeze("backbone"), finetune::FrozenBN::train);
  CHECK_FALSE(m.bn1->use_running_stats);
  CHECK_FALSE(m.conv1->weight.requires_grad());
  CHECK(m.fc->weight.requires_grad());
  CHECK_THROWS_WITH_AS(finetune::apply_freeze(m, finetune::parse_freeze("layer5"), finetune::FrozenBN::eval),
                       doctest::Contains("matches no parameter"), Error);
  SUBCASE("per-stage multipliers: one group per distinct multiplier, network order, head last") {
    finetune::apply_freeze(m, finetune::parse_freeze("none"), finetune::FrozenBN::eval);
    oc.lr_mult = finetune::parse_lr_mult("layer4=0.5,stem=0.01,layer3=0.5,backbone=0.1");
    auto gs = finetune::make_param_groups(m, oc, 1e-3);
    REQUIRE(gs.size() == 4);
    CHECK(gs[0].name == "stem");
    CHECK(gs[1].name == "layer1+layer2");
    CHECK(gs[2].name == "layer3+layer4");
    CHECK(gs[3].name == "head");
    CHECK(gs[0].lr == doctest::Approx(1e-5));
    CHECK(gs[1].lr == doctest::Approx(1e-4));
    CHECK(gs[2].lr == doctest::Approx(5e-4));
    CHECK(gs[3].lr == doctest::Approx(1e-3));
    size_t total = 0;
    for (auto& g : gs) total += g.params.size();
    CHECK(total == m.named_parameters().size());
    CHECK(gs[0].params.size() == 3);  // conv1.weight, bn1.weight, bn1.bias
    for (auto& [n, p] : m.named_parameters())
      if (n.rfind("layer3.", 0) == 0)
        CHECK(std::find(gs[2].params.begin(), gs[2].params.end(), p) != gs[2].params.end());
  }
  for (const char* bad : {"layer5=0.1", "fc=2", "layer4", "layer4=-1", "layer4=x", "layer4=0.1,layer4=0.2"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(finetune::parse_lr_mult(bad), Error);
  }
  CHECK(finetune::lr_mult_str(finetune::parse_lr_mult("layer4=0.5,backbone=0.1")) == "layer4=0.5,backbone=0.1");
  oc.kind = "lion";
  CHECK_THROWS_AS(finetune::validate(oc), InvalidArgument);
  CHECK_THROWS_AS(finetune::make_optimizer(oc, groups), Error);  // never a silent fallback to another optimizer
}

TEST_CASE("a frozen-BN (eval policy) forward in train mode leaves running stats alone; train policy updates them") {
  models::ResNet m({"resnet18", 4, 3});
  Rng rng(3);
  Tensor x = randn({2, 3, 32, 32}, rng);
  auto before = m.bn1->running_mean.to_vector<float>();
  finetune::apply_freeze(m, finetune::parse_freeze("backbone"), finetune::FrozenBN::eval);
  m.train();
  m.forward(x);
  CHECK(m.bn1->running_mean.to_vector<float>() == before);
  finetune::apply_freeze(m, finetune::parse_freeze("backbone"), finetune::FrozenBN::train);
  m.forward(x);
  CHECK(m.bn1->running_mean.to_vector<float>() != before);
}

TEST_CASE("metrics: top-1/top-5, ties by lower index, confusion matrix, per-class accuracy") {
  finetune::ClassMetrics m(6);
  // rows: argmax 2 (label 2, hit); argmax 0 (label 5, miss, label is 6th → not in top-5);
  //       tie between 1 and 3 → 1 wins (label 3: top-1 miss, top-5 hit)
  Tensor logits = from_vector({0, 1, 5, 2, 3, 4,  9, 8, 7, 6, 5, 1,  0, 4, 1, 4, 2, 3}, {3, 6});
  Tensor labels = from_vector_i64({2, 5, 3}, {3});
  m.add(logits, labels, 3.0);
  CHECK(m.count() == 3);
  CHECK(m.loss() == doctest::Approx(1.0));
  CHECK(m.top1() == doctest::Approx(1.0 / 3));
  CHECK(m.top5() == doctest::Approx(2.0 / 3));
  CHECK(m.last_predictions() == std::vector<int64_t>{2, 0, 1});
  CHECK(m.confusion()[2 * 6 + 2] == 1);
  CHECK(m.confusion()[5 * 6 + 0] == 1);
  CHECK(m.confusion()[3 * 6 + 1] == 1);
  auto pc = m.per_class_accuracy();
  CHECK(pc[2] == 1.0);
  CHECK(pc[3] == 0.0);
  CHECK(pc[0] == 0.0);  // no samples
  CHECK_THROWS_AS(m.add(logits, from_vector_i64({2, 6, 3}, {3}), 0.0), Error);
}
