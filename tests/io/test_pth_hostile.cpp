// .pth reader on hand-built files: valid variants it must accept (ZIP64 records, CRCs off, other
// prefixes, protocol-4 opcodes, legacy views) and hostile ones it must refuse with a clear
// rtune::Error (bad archives, foreign globals, recursion bombs, memo abuse, bounds, overflow).
#include <doctest/doctest.h>

#include <fstream>

#include "engine/printable.h"
#include "io/formats/pickle_vm.h"
#include "io/formats/pth.h"
#include "test_pth_builders.h"

using namespace rtune;
using namespace rtune::io;
using namespace pthb;
using namespace std::string_literals;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(RTUNE_SOURCE_DIR) / "tests" / "fixtures";

std::vector<std::byte> read_all(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return bytes(s);
}

std::string error_of(const std::vector<std::byte>& b, const PthOptions& o = {}) {
  try {
    load_pth_bytes(b, "case.pth", o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A one-tensor state dict {"w": arange(6) as (2,3)} with its storage.
const std::vector<float> kSix = {0, 1, 2, 3, 4, 5};
std::string good_pickle() { return dict({{"w", tensor("0", 6, 0, {2, 3}, {3, 1})}}); }

std::vector<float> values(const StoredTensor& t) {
  std::vector<std::byte> b = t.contiguous_bytes();
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), b.size());
  return v;
}

// Runs a bare pickle through the restricted machine.
std::string pickle_error(const std::string& p, pickle::Limits lim = {}) {
  pickle::Unpickler up("test", lim);
  size_t pos = 0;
  try {
    up.run(bytes(p), pos);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("pth builders: a hand-made archive loads (the baseline the hostile cases break)") {
  PthContents c = load_pth_bytes(pth(good_pickle(), {{"0", floats(kSix)}}), "ok.pth");
  REQUIRE(c.tensors.size() == 1);
  CHECK(c.tensors[0].first == "w");
  CHECK(values(c.tensors[0].second) == kSix);
}

TEST_CASE("pth: unusual but valid archives") {
  SUBCASE("ZIP64 end records and extras") {
    PthContents c = load_pth_bytes(pth(good_pickle(), {{"0", floats(kSix)}}, {.zip64 = true}), "z64.pth");
    CHECK(values(c.tensors.at(0).second) == kSix);
  }
  SUBCASE("CRCs switched off, no padding, another prefix") {
    PthContents c = load_pth_bytes(pth(good_pickle(), {{"0", floats(kSix)}}, {.zero_crc = true, .pad = false}, "my model"),
                                   "nocrc.pth");
    CHECK(values(c.tensors.at(0).second) == kSix);
  }
  SUBCASE("protocol 4 opcodes: FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL") {
    std::string t = "\x8c\x0ctorch._utils\x94\x8c\x12_rebuild_tensor_v2\x94\x93\x94";
    std::string p = "\x80\x04\x95" + le(0, 8) + "}\x94(\x8c\x01w\x94" + t + "((\x8c\x07storage\x94" +
                    glob("torch", "FloatStorage") + "\x8c\x01" "0\x8c\x03" "cpuK\x06tQK\x00K\x06\x85K\x01\x85\x89"s +
                    glob("collections", "OrderedDict") + ")RtR" + "\x8c\x01v\x94h\x01u.";
    // "v" re-uses memo 1 ("w" string) as a value: a str, so it is ignored with a note
    PthContents c = load_pth_bytes(pth(p, {{"0", floats(kSix)}}), "p4.pth");
    REQUIRE(c.tensors.size() == 1);
    CHECK(values(c.tensors[0].second) == kSix);
    CHECK(c.notes.at(0) == "ignored non-tensor entry v (str)");
  }
  SUBCASE("_rebuild_parameter wraps a tensor; nested {'model': {'state_dict': ...}}") {
    std::string param = glob("torch._utils", "_rebuild_parameter") + "(" + tensor("0", 6, 0, {6}, {1}) + "\x88" +
                        glob("collections", "OrderedDict") + ")Rt" + "R";
    std::string p = "\x80\x02}(" + str("model") + "}(" + str("state_dict") + "}(" + str("w") + param + "u" +
                    str("epoch") + "K\x01" + "uu.";
    PthContents c = load_pth_bytes(pth(p, {{"0", floats(kSix)}}), "nested.pth");
    CHECK(c.source_key == "model/state_dict");
    CHECK(values(c.tensors.at(0).second) == kSix);
    CHECK(load_pth_bytes(pth(p, {{"0", floats(kSix)}}), "n.pth", {.key = "model/state_dict"}).tensors.size() == 1);
  }
  SUBCASE("argparse.Namespace in a checkpoint is inert data") {
    std::string ns = glob("argparse", "Namespace") + ")\x81}(" + str("lr") + "G" + std::string("\x3f\xb9\x99\x99\x99\x99\x99\x9a", 8) + "ub";
    std::string p = "\x80\x02}(" + str("args") + ns + str("model") + "}(" + str("w") + tensor("0", 6, 0, {6}, {1}) + "uu.";
    PthContents c = load_pth_bytes(pth(p, {{"0", floats(kSix)}}), "tv.pth");
    CHECK(c.source_key == "model");
    CHECK(c.notes.at(0) == "ignored non-tensor entry args (object) beside 'model'");
  }
  SUBCASE("legacy format with a storage view") {
    // root storage "9" of 10 floats; the view covers elements [2, 8) and the tensor reads 6 of them
    std::string pid6 = glob("torch._utils", "_rebuild_tensor_v2") + "((" + str("storage") + glob("torch", "FloatStorage") +
                       str("9") + str("cpu") + num(10) + "(" + str("v") + num(2) + num(6) + "ttQ" + num(0) + tup({6}) +
                       tup({1}) + "\x89" + glob("collections", "OrderedDict") + ")RtR";
    std::vector<float> ten = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
    PthContents c = load_pth_bytes(legacy(dict({{"w", pid6}}), {{"9", 10, floats(ten)}}), "legacy.pth");
    CHECK(values(c.tensors.at(0).second) == std::vector<float>{12, 13, 14, 15, 16, 17});
    std::string over = pid6;
    over.replace(over.find(tup({6})), tup({6}).size(), tup({7}));  // 7 elements overrun the 6-element view
    CHECK(error_of(legacy(dict({{"w", over}}), {{"9", 10, floats(ten)}})).find("storage holds 8 elements") != std::string::npos);
  }
}

TEST_CASE("pth: damaged archives are refused") {
  const std::vector<std::byte> real = read_all(kFixtures / "tiny_resnet18.pth");
  REQUIRE(real.size() > 1000);
  SUBCASE("truncated") {
    for (size_t keep : {size_t(3), size_t(21), size_t(100), real.size() / 2, real.size() - 23, real.size() - 1}) {
      CAPTURE(keep);
      std::string e = error_of(std::vector<std::byte>(real.begin(), real.begin() + std::ptrdiff_t(keep)));
      CHECK(!e.empty());
    }
    CHECK(error_of(std::vector<std::byte>(real.begin(), real.begin() + 1000)).find("no end-of-central-directory") !=
          std::string::npos);
  }
  SUBCASE("wrong magic") {
    std::vector<std::byte> b = real;
    b[2] = std::byte{'X'};
    CHECK(error_of(b).find("not a PyTorch checkpoint") != std::string::npos);
    std::vector<std::byte> l = legacy(good_pickle(), {{"0", 6, floats(kSix)}});
    l[4] ^= std::byte{1};  // inside the LONG1 magic number
    CHECK(error_of(l).find("no legacy magic number") != std::string::npos);
    CHECK(error_of(bytes(std::string(300, 'a'))).find("not a PyTorch checkpoint") != std::string::npos);
  }
  SUBCASE("CRC mismatch") {
    std::vector<std::byte> b = pth(good_pickle(), {{"0", floats(kSix)}});
    std::string s(reinterpret_cast<const char*>(b.data()), b.size());
    b[s.find(floats(kSix)) + 5] ^= std::byte{0x40};
    CHECK(error_of(b).find("fails its CRC check") != std::string::npos);
  }
  SUBCASE("record size != numel x element size") {
    CHECK(error_of(pth(good_pickle(), {{"0", floats({0, 1, 2, 3, 4})}})).find("holds 20 bytes but 6 x torch.FloatStorage needs 24") !=
          std::string::npos);
  }
  SUBCASE("missing storage record, TorchScript, big-endian, compressed entries") {
    CHECK(error_of(pth(good_pickle(), {})).find("data/0 is missing") != std::string::npos);
    CHECK(error_of(bytes(zip({{"a/data.pkl", good_pickle()}, {"a/constants.pkl", "x"}}))).find("TorchScript") != std::string::npos);
    CHECK(error_of(bytes(zip({{"a/data.pkl", good_pickle()}, {"a/byteorder", "big"}}))).find("little-endian") != std::string::npos);
    std::string z = zip({{"a/data.pkl", good_pickle()}});
    z[z.find(std::string("PK\x01\x02", 4)) + 10] = 8;  // central directory: method 8 (deflate)
    CHECK(error_of(bytes(z)).find("compressed (method 8)") != std::string::npos);
  }
  SUBCASE("offsets past the file") {
    std::string z = zip({{"a/data.pkl", good_pickle()}, {"a/data/0", floats(kSix)}});
    std::string z2 = z;
    const size_t cd = z.find(std::string("PK\x01\x02", 4));
    const std::string far = le(0x7fffff00, 4);
    z.replace(cd + 42, 4, far);  // local header offset of the first entry
    CHECK(error_of(bytes(z)).find("runs past the end") != std::string::npos);
    z2.replace(cd + 20, 4, le(0x10000, 4));  // compressed size
    z2.replace(cd + 24, 4, le(0x10000, 4));  // size
    CHECK(error_of(bytes(z2)).find("runs past the archive data") != std::string::npos);
    std::string z3 = zip({{"a/data.pkl", good_pickle()}});
    z3.replace(z3.size() - 6, 4, le(0xFFFFFF0, 4));  // end record: central directory offset
    CHECK(error_of(bytes(z3)).find("central directory") != std::string::npos);
  }
}

TEST_CASE("pth: the restricted unpickler refuses foreign globals by name") {
  const std::string arg = str("touch /tmp/pwned");
  SUBCASE("GLOBAL + REDUCE os.system") {
    CHECK(error_of(pth("\x80\x02" + glob("os", "system") + arg + "\x85R.", {})).find("refusing global os.system") !=
          std::string::npos);
  }
  SUBCASE("builtins.eval hidden inside a state dict value") {
    std::string p = dict({{"w", tensor("0", 6, 0, {6}, {1})}, {"x", glob("builtins", "eval") + arg + "\x85R"}});
    CHECK(error_of(pth(p, {{"0", floats(kSix)}})).find("refusing global builtins.eval") != std::string::npos);
  }
  SUBCASE("INST posix.system") {
    CHECK(error_of(pth("\x80\x02(" + arg + "iposix\nsystem\n.", {})).find("refusing global posix.system") !=
          std::string::npos);
  }
  SUBCASE("STACK_GLOBAL posix.system") {
    CHECK(error_of(pth("\x80\x04\x8c\x05posix\x8c\x06system\x93" + arg + "\x85R.", {})).find("refusing global posix.system") !=
          std::string::npos);
  }
  SUBCASE("OBJ builtins.eval") {
    CHECK(error_of(pth("\x80\x02(" + glob("builtins", "eval") + arg + "o.", {})).find("refusing global builtins.eval") !=
          std::string::npos);
  }
  SUBCASE("quantized rebuilds and the legacy stream too") {
    CHECK(error_of(pth("\x80\x02" + glob("torch._utils", "_rebuild_qtensor") + ").", {}))
              .find("refusing global torch._utils._rebuild_qtensor") != std::string::npos);
    CHECK(error_of(legacy("\x80\x02" + glob("os", "system") + arg + "\x85R.", {})).find("refusing global os.system") !=
          std::string::npos);
  }
  SUBCASE("allowed globals still cannot be misused") {
    CHECK(pickle_error("\x80\x02" + glob("torch", "FloatStorage") + ")R.").find("cannot be called") != std::string::npos);
    CHECK(pickle_error("\x80\x02" + glob("_codecs", "encode") + str("x") + str("rot13") + "\x86R.").find("latin1") !=
          std::string::npos);
    CHECK(pickle_error("\x80\x02" + glob("collections", "OrderedDict") + ")\x81" + str("x") + "a.").find("APPEND on a dict") !=
          std::string::npos);
    CHECK(pickle_error("\x80\x02(" + str("x") + "Q.").find("persistent id") != std::string::npos);
    CHECK(pickle_error("\x80\x02K\x01K\x02" "b.").find("BUILD on a int") != std::string::npos);
  }
}

TEST_CASE("pth: recursion bombs, memo abuse and malformed pickles are bounded") {
  SUBCASE("deeply nested lists") {
    const int n = 100000;
    std::string p = "\x80\x02" + std::string(n, ']') + std::string(n - 1, 'a') + ".";
    CHECK(pickle_error(p).find("nested deeper than 200") != std::string::npos);
    CHECK(error_of(pth(p, {})).find("nested deeper") != std::string::npos);
  }
  SUBCASE("deeply nested tuples and marks") {
    std::string t = "\x80\x02)" + std::string(5000, '\x85') + ".";
    CHECK(pickle_error(t).find("nested deeper") != std::string::npos);
    CHECK(pickle_error("\x80\x02" + std::string(100000, '(') + ".").find("MARKs nested deeper") != std::string::npos);
  }
  SUBCASE("a list appended into itself (a cycle) neither hangs nor leaks") {
    std::string p = "\x80\x02]q\x00h\x00" "a" "h\x00" "a" "0" "}("s + str("w") + tensor("0", 6, 0, {6}, {1}) + "u.";
    PthContents c = load_pth_bytes(pth(p, {{"0", floats(kSix)}}), "cycle.pth");
    CHECK(c.tensors.size() == 1);
  }
  SUBCASE("huge memo indices") {
    CHECK(pickle_error("\x80\x02K\x01r" + le(0xFFFFFFFF, 4) + "0j" + le(0xFFFFFFFE, 4) + ".").find("memo index 4294967294") !=
          std::string::npos);
    CHECK(pickle_error("\x80\x02K\x01r" + le(0xFFFFFFFF, 4) + "0j" + le(0xFFFFFFFF, 4) + ".") == "");
    std::string many = "\x80\x02K\x01";
    for (int i = 0; i < 20; ++i) many += "q" + std::string(1, char(i));
    CHECK(pickle_error(many + ".", {.max_memo = 10}).find("more than 10 memo entries") != std::string::npos);
  }
  SUBCASE("value count limit") {
    CHECK(pickle_error("\x80\x02" + std::string(50, 'N') + ".", {.max_nodes = 20}).find("more than 20 pickle values") !=
          std::string::npos);
  }
  SUBCASE("truncation, unknown opcodes, stack underflow, long strings") {
    CHECK(pickle_error("\x80\x02X" + le(1000, 4) + "abc").find("ends early") != std::string::npos);
    CHECK(pickle_error("\x80\x02X" + le(0xFFFFFFFF, 4) + "abc").find("ends early") != std::string::npos);
    CHECK(pickle_error("\x80\x02\x8a\xff" "abc").find("ends early") != std::string::npos);
    CHECK(pickle_error("\x80\x02\xff.").find("unsupported pickle opcode 0xff") != std::string::npos);
    CHECK(pickle_error("\x80\x02P1\n.").find("unsupported pickle opcode 0x50") != std::string::npos);  // PERSID (text)
    CHECK(pickle_error("\x80\x02R.").find("stack underflow") != std::string::npos);
    CHECK(pickle_error("\x80\x02(K\x01" "0" "0.").find("stack underflow") != std::string::npos);  // POP below a MARK
    CHECK(pickle_error("\x80\x02K\x01K\x02.").find("unbalanced") != std::string::npos);
    CHECK(pickle_error("\x80\x02" + std::string("c") + std::string(2000, 'a')).find("unterminated") != std::string::npos);
  }
}

TEST_CASE("pth: storages and views are bounds-checked") {
  SUBCASE("storage numel x element size overflows") {
    std::string p = dict({{"w", tensor("0", int64_t(1) << 62, 0, {1}, {1})}});
    CHECK(error_of(pth(p, {{"0", floats(kSix)}})).find("overflows") != std::string::npos);
  }
  SUBCASE("legacy storage size past the file") {
    CHECK(error_of(legacy(good_pickle(), {{"0", int64_t(1) << 40, floats(kSix)}})).find("runs past the end") !=
          std::string::npos);
    CHECK(error_of(legacy(good_pickle(), {{"0", 5, floats(kSix)}})).find("persistent id says 6") != std::string::npos);
    std::vector<std::byte> extra = legacy(good_pickle(), {{"0", 6, floats(kSix)}});
    CHECK(error_of(extra) == "");
    extra.push_back(std::byte{0});
    CHECK(error_of(extra).find("1 unexpected bytes") != std::string::npos);
    CHECK(error_of(legacy(good_pickle(), {{"1", 6, floats(kSix)}})).find("listed but no tensor uses it") != std::string::npos);
  }
  SUBCASE("shape products that overflow") {
    std::string p = dict({{"w", tensor("0", 6, 0, {int64_t(1) << 32, int64_t(1) << 32}, {0, 0})}});
    CHECK(error_of(pth(p, {{"0", floats(kSix)}})).find("overflows") != std::string::npos);
  }
  SUBCASE("a view that exceeds its storage") {
    CHECK(error_of(pth(dict({{"w", tensor("0", 6, 4, {3}, {1})}}), {{"0", floats(kSix)}}))
              .find("view reaches element 6 but its storage holds 6") != std::string::npos);
    CHECK(error_of(pth(dict({{"w", tensor("0", 6, 0, {2, 3}, {1, 3})}}), {{"0", floats(kSix)}}))
              .find("view reaches element 7") != std::string::npos);
    CHECK(error_of(pth(dict({{"w", tensor("0", 6, 0, {3}, {int64_t(1) << 62})}}), {{"0", floats(kSix)}}))
              .find("extent overflows") != std::string::npos);
    CHECK(error_of(pth(dict({{"w", tensor("0", 6, -1, {3}, {1})}}), {{"0", floats(kSix)}})).find("negative storage offset") !=
          std::string::npos);
    CHECK(error_of(pth(dict({{"w", tensor("0", 6, 0, {3}, {-1})}}), {{"0", floats(kSix)}})).find("negative stride") !=
          std::string::npos);
    CHECK(error_of(pth(dict({{"w", tensor("0", 6, 0, {3, 2}, {1})}}), {{"0", floats(kSix)}})).find("2 dims but stride has 1") !=
          std::string::npos);
  }
  SUBCASE("an overlapping view may not materialize more than its storage (a few bytes asking for gigabytes)") {
    CHECK(error_of(pth(dict({{"w", tensor("0", 1, 0, {(int64_t(1) << 29) + 3}, {0})}}), {{"0", floats({1.0f})}}))
              .find("view has 536870915 elements but its storage holds only 1") != std::string::npos);
    CHECK(error_of(pth(dict({{"w", tensor("0", 6, 0, {7}, {0})}}), {{"0", floats(kSix)}})).find("overlapping view") !=
          std::string::npos);
    // stride 0 inside the storage's size is fine: 6 elements read from 6
    CHECK(error_of(pth(dict({{"w", tensor("0", 6, 0, {2, 3}, {0, 1})}}), {{"0", floats(kSix)}})) == "");
  }
  SUBCASE("one storage key with two dtypes; unsupported storage types") {
    std::string p = dict({{"a", tensor("0", 6, 0, {6}, {1})}, {"b", tensor("0", 3, 0, {3}, {1}, "DoubleStorage")}});
    CHECK(error_of(pth(p, {{"0", floats(kSix)}})).find("used as both float32 and float64") != std::string::npos);
    std::string q = dict({{"a", tensor("0", 6, 0, {6}, {1}, "IntStorage")}});
    CHECK(error_of(pth(q, {{"0", floats(kSix)}})).find("torch.IntStorage is not supported") != std::string::npos);
  }
  SUBCASE("zero-size tensors and empty storages are fine") {
    std::string p = dict({{"e", tensor("0", 0, 0, {0, 3000000000LL}, {3000000000LL, 1})}});
    PthContents c = load_pth_bytes(pth(p, {{"0", ""}}), "empty.pth");
    CHECK(c.tensors.at(0).second.numel() == 0);
    CHECK(c.tensors.at(0).second.contiguous_bytes().empty());
  }
  SUBCASE("no tensors at all lists the keys") {
    CHECK(error_of(pth("\x80\x02}(" + str("epoch") + "K\x03u.", {})).find("no tensors found; keys: epoch") != std::string::npos);
    CHECK(error_of(pth("\x80\x02]" ".", {})).find("holds a list, not a dict") != std::string::npos);
  }
}

// Issue 21: a checkpoint's keys are printed escaped, and a bounded number of them.
TEST_CASE("pth: 20,000 keys make a short error and few notes; keys are escaped") {
  std::vector<std::pair<std::string, std::string>> ints;  // {key: 3}
  for (int i = 0; i < 20'000; ++i) ints.emplace_back(i == 1 ? "evil\x1b[2J" : "k" + std::to_string(i), "K\x03");
  std::string err = error_of(pth(dict(ints), {}));
  CHECK(err.find("no tensors found; keys: k0, evil\\x1b[2J, k2,") != std::string::npos);
  CHECK(err.find("k9, … and 19990 more") != std::string::npos);
  CHECK(err.find('\x1b') == std::string::npos);
  CHECK(err.size() < 300);

  // The same entries beside one tensor: ignored, ten named in notes, the rest counted.
  ints.insert(ints.begin(), {"w", tensor("0", 6, 0, {2, 3}, {3, 1})});
  PthContents c = load_pth_bytes(pth(dict(ints), {{"0", floats(kSix)}}), "many.pth");
  CHECK(c.tensors.size() == 1);
  REQUIRE(c.notes.size() == kMaxPrintedNames + 1);
  CHECK(c.notes[1] == "ignored non-tensor entry evil\\x1b[2J (int)");
  CHECK(c.notes.back() == "… and 19990 more ignored entries");
}
