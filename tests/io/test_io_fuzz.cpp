// A bounded, seeded mutation fuzz of both weight readers: every mutant of the seed files (bit flips,
// byte sets, truncations, chunk duplication/deletion) must either load or throw rtune::Error. Any
// other exception fails the test; a crash or memory error fails it too (run under ASan+UBSan with
// -DRTUNE_SANITIZE=ON). Small seeds get many mutants, the real ResNet fixtures a few in their headers.
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <random>

#include "io/formats/pth.h"
#include "io/formats/safetensors.h"
#include "io/formats/zip_reader.h"
#include "test_pth_builders.h"

using namespace rtune;
using namespace rtune::io;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(RTUNE_SOURCE_DIR) / "tests" / "fixtures";
using Bytes = std::vector<std::byte>;

Bytes read_all(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return pthb::bytes(s);
}

// One to three random edits, confined to [lo, hi) of the seed where given (headers of big files).
Bytes mutate(const Bytes& seed, std::mt19937_64& rng, size_t lo, size_t hi) {
  Bytes b = seed;
  auto pick = [&](size_t a, size_t z) { return z <= a ? a : a + size_t(rng() % (z - a)); };
  const int edits = 1 + int(rng() % 3);
  for (int e = 0; e < edits && !b.empty(); ++e) {
    const size_t end = std::min(hi, b.size());
    const size_t at = pick(std::min(lo, end - 1), end);
    switch (rng() % 6) {
      case 0: b[at] ^= std::byte(1u << (rng() % 8)); break;                    // bit flip
      case 1: {                                                                 // interesting byte
        static const unsigned char v[] = {0x00, 0xff, 0x7f, 0x80, 0x01, 0x20, '(', ']', '.', 'c'};
        b[at] = std::byte(v[rng() % sizeof(v)]);
        break;
      }
      case 2: b[at] = std::byte(rng() & 0xff); break;                           // random byte
      case 3: b.resize(pick(0, b.size())); break;                               // truncation
      case 4: {                                                                 // chunk duplication
        const size_t len = 1 + size_t(rng() % 64), from = pick(0, b.size());
        const size_t n = std::min(len, b.size() - from);
        Bytes chunk(b.begin() + std::ptrdiff_t(from), b.begin() + std::ptrdiff_t(from + n));
        b.insert(b.begin() + std::ptrdiff_t(pick(0, b.size())), chunk.begin(), chunk.end());
        break;
      }
      case 5: {                                                                 // chunk deletion
        const size_t n = std::min(size_t(1 + rng() % 32), b.size() - at);
        b.erase(b.begin() + std::ptrdiff_t(at), b.begin() + std::ptrdiff_t(at + n));
        break;
      }
    }
  }
  return b;
}

struct Tally {
  int loaded = 0, rejected = 0;
};

// Both readers on one input; touching every loaded byte lets ASan see any out-of-bounds view.
void run_both(const Bytes& b, Tally& t) {
  try {
    PthContents c = load_pth_bytes(b, "mutant.pth");
    size_t sum = 0;
    for (const auto& [name, st] : c.tensors) sum += st.contiguous_bytes().size();
    (void)sum;
    ++t.loaded;
  } catch (const Error&) {
    ++t.rejected;
  }
  try {
    SafetensorsFile f = SafetensorsFile::from_bytes(b, "mutant.safetensors");
    unsigned x = 0;
    for (const SafetensorsView& v : f.tensors())
      for (std::byte y : v.bytes) x += unsigned(y);
    (void)x;
    ++t.loaded;
  } catch (const Error&) {
    ++t.rejected;
  }
}

// views.pth's pickle re-zipped with CRCs off, so mutations reach the unpickler instead of the CRC.
Bytes views_without_crc() {
  Bytes v = read_all(kFixtures / "views.pth");
  ZipReader z(v, "views.pth");
  std::vector<std::pair<std::string, std::string>> entries;
  for (const ZipEntry& e : z.entries()) {
    std::span<const std::byte> d = z.read(e);
    entries.push_back({e.name, std::string(reinterpret_cast<const char*>(d.data()), d.size())});
  }
  return pthb::bytes(pthb::zip(entries, {.zero_crc = true}));
}

}  // namespace

TEST_CASE("io fuzz: mutants of every seed load or throw rtune::Error, never anything else") {
  using pthb::dict;
  using pthb::tensor;
  struct Seed {
    std::string name;
    Bytes bytes;
    int mutants;
    size_t lo = 0, hi = SIZE_MAX;
  };
  const std::vector<float> six = {0, 1, 2, 3, 4, 5};
  const std::string two = dict({{"a", tensor("0", 6, 1, {2, 2}, {1, 2})}, {"b", tensor("1", 6, 0, {6}, {1}, "DoubleStorage")}});
  std::vector<Seed> seeds = {
      {"views.pth", read_all(kFixtures / "views.pth"), 3000},
      {"views.pth (no CRC)", views_without_crc(), 6000},
      {"rtune_written.safetensors", read_all(kFixtures / "rtune_written.safetensors"), 5000},
      {"legacy (built)", pthb::legacy(two, {{"0", 6, pthb::floats(six)}, {"1", 6, std::string(48, '\x01')}}), 6000},
      {"zip64 no CRC (built)", pthb::pth(two, {{"0", pthb::floats(six)}, {"1", std::string(48, '\x01')}}, {.zip64 = true, .zero_crc = true}), 4000},
  };
  // The real fixtures: few mutants, aimed at the parts a reader interprets (header, pickle, directory).
  Bytes st = read_all(kFixtures / "tiny_resnet18.safetensors");
  Bytes pz = read_all(kFixtures / "tiny_resnet18.pth");
  Bytes pl = read_all(kFixtures / "tiny_resnet18_legacy.pth");
  seeds.push_back({"tiny_resnet18.safetensors header", st, 150, 0, 10400});
  seeds.push_back({"tiny_resnet18.pth directory", pz, 150, pz.size() - 12000, pz.size()});
  seeds.push_back({"tiny_resnet18_legacy.pth pickles", pl, 150, 0, 16000});

  const auto t0 = std::chrono::steady_clock::now();
  std::mt19937_64 rng(20240611);
  int total = 0;
  for (const Seed& s : seeds) {
    CAPTURE(s.name);
    REQUIRE(!s.bytes.empty());
    Tally t;
    run_both(s.bytes, t);
    CHECK(t.loaded == 1);  // each unmutated seed is valid for exactly one of the two readers
    for (int i = 0; i < s.mutants; ++i) {
      Bytes m = mutate(s.bytes, rng, s.lo, s.hi);
      try {
        run_both(m, t);
      } catch (const std::exception& e) {
        FAIL("mutant ", i, " of ", s.name, " threw a non-rtune exception: ", e.what());
      }
    }
    total += s.mutants;
    MESSAGE(s.name, " (", s.bytes.size(), " bytes): ", s.mutants, " mutants, ", t.loaded, " loads, ", t.rejected, " rejections");
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE(total, " mutants through both readers in ", secs, " s");
}
