// .pth reader on the files torch 2.11 wrote (shared/fixtures, copied to tests/fixtures): every flavour
// (zip, legacy, checkpoint dict, DataParallel, fp16, views, ResNet-50) loads, and the ResNet-18 ones
// hold exactly the tensors the safetensors library wrote for the same weights.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "io/formats/pth.h"
#include "io/formats/safetensors.h"

using namespace rtune;
using namespace rtune::io;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(RTUNE_SOURCE_DIR) / "tests" / "fixtures";

const StoredTensor* find(const PthContents& c, const std::string& name) {
  for (const auto& [n, t] : c.tensors)
    if (n == name) return &t;
  return nullptr;
}

bool has_note(const PthContents& c, const std::string& text) {
  for (const std::string& n : c.notes)
    if (n.find(text) != std::string::npos) return true;
  return false;
}

// IEEE binary32 -> binary16 bits, round to nearest even (what tensor.half() does on CPU).
uint16_t to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const int32_t exp = int32_t((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffffu;
  if (((x >> 23) & 0xff) == 0xff) return uint16_t(sign | 0x7c00u | (mant ? 0x200u : 0));
  if (exp >= 31) return uint16_t(sign | 0x7c00u);
  if (exp <= 0) {  // subnormal half (or zero)
    if (exp < -10) return uint16_t(sign);
    mant |= 0x800000u;
    const uint32_t shift = uint32_t(14 - exp);
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) ++h;
    return uint16_t(sign | h);
  }
  uint32_t h = (uint32_t(exp) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;  // may carry into the exponent: still correct
  return uint16_t(sign | h);
}

// Every tensor of `c` equals the same-named tensor in the safetensors reference (fp16: after rounding).
void check_equals_reference(const PthContents& c, bool fp16) {
  auto ref = SafetensorsFile::open(kFixtures / "tiny_resnet18.safetensors");
  REQUIRE(c.tensors.size() == ref.tensors().size());
  for (const auto& [name, t] : c.tensors) {
    CAPTURE(name);
    const SafetensorsView* r = ref.find(name);
    REQUIRE(r != nullptr);
    CHECK(t.shape == r->shape);
    const std::vector<std::byte> got = t.contiguous_bytes();
    if (fp16 && r->dtype == DType::f32) {
      REQUIRE(t.dtype == DType::f16);
      std::vector<float> want = ref.copy_as<float>(name);
      REQUIRE(got.size() == want.size() * 2);
      size_t worst = SIZE_MAX;
      for (size_t i = 0; i < want.size() && worst == SIZE_MAX; ++i) {
        uint16_t h;
        std::memcpy(&h, got.data() + 2 * i, 2);
        if (h != to_half(want[i])) worst = i;
      }
      CHECK_MESSAGE(worst == SIZE_MAX, "first fp16 mismatch at element ", worst);
    } else {
      CHECK(t.dtype == r->dtype);
      REQUIRE(got.size() == r->bytes.size());
      CHECK(std::memcmp(got.data(), r->bytes.data(), got.size()) == 0);
    }
  }
}

}  // namespace

TEST_CASE("pth: to_half rounds like torch (sanity of the test's own helper)") {
  CHECK(to_half(1.0f) == 0x3c00);
  CHECK(to_half(-2.0f) == 0xc000);
  CHECK(to_half(65504.f) == 0x7bff);
  CHECK(to_half(1e6f) == 0x7c00);
  CHECK(to_half(5.9604645e-08f) == 0x0001);      // smallest subnormal
  CHECK(to_half(1.0f + 1.0f / 2048) == 0x3c00);  // tie -> even
  CHECK(to_half(1.0f + 3.0f / 2048) == 0x3c02);  // tie -> even (up)
}

TEST_CASE("pth: zip state_dict equals the safetensors reference") {
  PthContents c = load_pth(kFixtures / "tiny_resnet18.pth");
  CHECK(c.source_key == "");
  CHECK(c.tensors.front().first == "conv1.weight");  // file order
  const StoredTensor* w = find(c, "conv1.weight");
  REQUIRE(w);
  CHECK(w->dtype == DType::f32);
  CHECK(w->strides == std::vector<int64_t>{147, 49, 7, 1});
  const StoredTensor* nbt = find(c, "bn1.num_batches_tracked");
  REQUIRE(nbt);
  CHECK(nbt->dtype == DType::i64);
  CHECK(nbt->shape.empty());
  CHECK(nbt->numel() == 1);
  check_equals_reference(c, false);
}

TEST_CASE("pth: legacy (pre-1.6) format") {
  PthContents c = load_pth(kFixtures / "tiny_resnet18_legacy.pth");
  check_equals_reference(c, false);
}

TEST_CASE("pth: training checkpoint dict: the state dict is found under 'state_dict'") {
  PthContents c = load_pth(kFixtures / "tiny_resnet18_checkpoint.pth");
  CHECK(c.source_key == "state_dict");
  CHECK(has_note(c, "ignored non-tensor entry epoch (int)"));
  CHECK(has_note(c, "ignored non-tensor entry best_acc (float)"));
  check_equals_reference(c, false);
  PthContents k = load_pth(kFixtures / "tiny_resnet18_checkpoint.pth", {.key = "state_dict"});
  CHECK(k.source_key == "state_dict");
  CHECK(k.tensors.size() == c.tensors.size());
  CHECK_THROWS_WITH_AS(load_pth(kFixtures / "tiny_resnet18_checkpoint.pth", {.key = "weights"}),
                       doctest::Contains("no key 'weights' (keys: epoch, best_acc, state_dict)"), Error);
  CHECK_THROWS_WITH_AS(load_pth(kFixtures / "tiny_resnet18_checkpoint.pth", {.key = "epoch"}),
                       doctest::Contains("'epoch' holds a int"), Error);
}

TEST_CASE("pth: DataParallel 'module.' prefix is stripped") {
  PthContents c = load_pth(kFixtures / "tiny_resnet18_dataparallel.pth");
  CHECK(has_note(c, "stripped 'module.' prefix"));
  check_equals_reference(c, false);
}

TEST_CASE("pth: fp16 checkpoint equals the f32 weights rounded to fp16; int64 buffers unchanged") {
  PthContents c = load_pth(kFixtures / "tiny_resnet18_fp16.pth");
  check_equals_reference(c, true);
  CHECK(find(c, "bn1.num_batches_tracked")->dtype == DType::i64);
}

TEST_CASE("pth: views.pth keeps the offset, the transposed strides and the shared storage") {
  PthContents c = load_pth(kFixtures / "views.pth");
  REQUIRE(c.tensors.size() == 2);
  const StoredTensor* whole = find(c, "whole");
  const StoredTensor* view = find(c, "view");
  REQUIRE(whole);
  REQUIRE(view);
  CHECK(whole->shape == std::vector<int64_t>{24});
  CHECK(view->storage_offset == 4);
  CHECK(view->shape == std::vector<int64_t>{4, 3});
  CHECK(view->strides == std::vector<int64_t>{1, 4});
  CHECK(view->storage.get() == whole->storage.get());  // one storage, loaded once
  CHECK_FALSE(view->is_contiguous());
  // whole = arange(24); view = whole[4:16].view(3,4).t()  ->  view[i][j] = 4 + 4*j + i
  std::vector<std::byte> b = view->contiguous_bytes();
  REQUIRE(b.size() == 12 * 4);
  std::vector<float> v(12);
  std::memcpy(v.data(), b.data(), b.size());
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j) CHECK(v[size_t(i * 3 + j)] == float(4 + 4 * j + i));
  std::vector<std::byte> wb = whole->contiguous_bytes();
  std::vector<float> w(24);
  std::memcpy(w.data(), wb.data(), wb.size());
  for (int i = 0; i < 24; ++i) CHECK(w[size_t(i)] == float(i));
}

TEST_CASE("pth: tiny ResNet-50 (Bottleneck) has torchvision's 320 keys") {
  PthContents c = load_pth(kFixtures / "tiny_resnet50.pth");
  CHECK(c.tensors.size() == 320);
  REQUIRE(find(c, "layer1.0.downsample.0.weight"));
  REQUIRE(find(c, "layer4.2.conv3.weight"));
  CHECK(find(c, "fc.weight")->shape == std::vector<int64_t>{7, 256});
  for (const auto& [name, t] : c.tensors) {
    CAPTURE(name);
    CHECK(t.numel() * int64_t(dtype_size(t.dtype)) <= int64_t(t.storage->size()));
  }
}

TEST_CASE("pth: a missing file or a non-checkpoint names the file") {
  CHECK_THROWS_WITH_AS(load_pth("/nonexistent/x.pth"), doctest::Contains("/nonexistent/x.pth"), Error);
  CHECK_THROWS_WITH_AS(load_pth(kFixtures / "tiny_resnet18.safetensors"), doctest::Contains("not a PyTorch checkpoint"),
                       Error);
}
