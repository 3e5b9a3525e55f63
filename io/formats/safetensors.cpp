// safetensors reader: the checks of huggingface/safetensors' read_metadata + Metadata::validate
// (src/tensor.rs), plus duplicate-name rejection. See safetensors.h.
#include "io/formats/safetensors.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "engine/printable.h"
#include "io/formats/stored_checked.h"
#include "io/formats/stored_mapping.h"

namespace rtune::io {

struct SafetensorsFile::Backing {
  StoredMapping mapping;
};

namespace {

using nlohmann::json;

constexpr uint64_t kMaxHeader = 100'000'000;  // the reference's HeaderTooLarge bound

// Every dtype string the reference knows; only some map to rtune dtypes.
std::optional<DType> parse_dtype(const std::string& s, const std::string& label, const std::string& name) {
  if (s == "F32") return DType::f32;
  if (s == "F64") return DType::f64;
  if (s == "BF16") return DType::bf16;
  if (s == "F16") return DType::f16;
  if (s == "I64") return DType::i64;
  if (s == "U8") return DType::u8;
  static const std::set<std::string> known = {"BOOL", "I8", "I16", "U16", "I32", "U32", "U64", "C64",
                                              "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ",
                                              "F8_E5M2FNUZ", "F4", "F6_E2M3", "F6_E3M2"};
  if (known.count(s))
    fail("safetensors {}: tensor '{}' has dtype {}, which rtune does not support (F32 F64 BF16 F16 I64 U8)",
         label, printable(name), s);
  fail("safetensors {}: tensor '{}' has unknown dtype '{}'", label, printable(name), printable(s));
}

// A JSON number that must be a non-negative integer.
uint64_t as_count(const json& j, const std::string& label, const std::string& name, const char* what) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer())
    fail("safetensors {}: tensor '{}' has a negative {} ({})", label, printable(name), what, j.get<int64_t>());
  fail("safetensors {}: tensor '{}': {} must be a non-negative integer, got {}", label, printable(name), what,
       printable(j.dump()));
}

struct Parsed {
  SafetensorsView view;
  uint64_t begin, end;
};

Parsed parse_entry(const std::string& label, const std::string& name, const json& e) {
  if (!e.is_object()) fail("safetensors {}: entry '{}' is not an object", label, printable(name));
  auto dt = e.find("dtype");
  auto sh = e.find("shape");
  auto off = e.find("data_offsets");
  if (dt == e.end() || sh == e.end() || off == e.end())
    fail("safetensors {}: entry '{}' needs dtype, shape and data_offsets", label, printable(name));
  if (!dt->is_string()) fail("safetensors {}: tensor '{}': dtype is not a string", label, printable(name));
  Parsed p;
  p.view.name = name;
  p.view.dtype = *parse_dtype(dt->get<std::string>(), label, name);
  if (!sh->is_array()) fail("safetensors {}: tensor '{}': shape is not an array", label, printable(name));
  for (const json& d : *sh) {
    uint64_t v = as_count(d, label, name, "dimension");
    if (v > uint64_t(INT64_MAX)) fail("safetensors {}: tensor '{}': dimension {} too large", label, printable(name), v);
    p.view.shape.push_back(int64_t(v));
  }
  if (!off->is_array() || off->size() != 2)
    fail("safetensors {}: tensor '{}': data_offsets must be [begin, end]", label, printable(name));
  p.begin = as_count((*off)[0], label, name, "data offset");
  p.end = as_count((*off)[1], label, name, "data offset");
  if (p.end < p.begin)
    fail("safetensors {}: tensor '{}': data_offsets [{}, {}] end before begin", label, printable(name), p.begin,
         p.end);
  int64_t numel = 0, nbytes = 0;
  if (!shape_numel(p.view.shape, numel) || !mul_ok(numel, int64_t(dtype_size(p.view.dtype)), nbytes))
    fail("safetensors {}: tensor '{}': shape product overflows", label, printable(name));
  if (uint64_t(nbytes) != p.end - p.begin)
    fail("safetensors {}: tensor '{}': shape {} x {} needs {} bytes but data_offsets [{}, {}] hold {}", label,
         printable(name), json(p.view.shape).dump(), dtype_name(p.view.dtype), nbytes, p.begin, p.end, p.end - p.begin);
  return p;
}

// nlohmann keeps the last of duplicate keys silently, so a second, SAX pass looks for them. (A
// parse callback would do it in one pass, but nlohmann's callback parser rescans the whole enclosing
// object at every nested object's end: quadratic in the entry count.)
class TopLevelKeyWatch : public nlohmann::json_sax<json> {
 public:
  std::optional<std::string> duplicate;

  bool key(string_t& k) override {
    if (depth_ == 1 && !seen_.insert(k).second) {
      duplicate = k;
      return false;  // stop at the first one
    }
    return true;
  }
  bool start_object(std::size_t) override { return ++depth_, true; }
  bool end_object() override { return --depth_, true; }
  bool start_array(std::size_t) override { return ++depth_, true; }
  bool end_array() override { return --depth_, true; }
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool parse_error(std::size_t, const std::string&, const json::exception&) override { return false; }

 private:
  int depth_ = 0;
  std::set<std::string> seen_;
};

// requires: [hdr, hdr + n) already parsed as a JSON object.
std::optional<std::string> first_duplicate_top_level_key(const char* hdr, uint64_t n) {
  TopLevelKeyWatch watch;
  json::sax_parse(hdr, hdr + n, &watch);
  return watch.duplicate;
}

}  // namespace

int64_t SafetensorsView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated on open: cannot overflow
  return n;
}

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  auto b = std::make_unique<Backing>(Backing{StoredMapping::map_file(path, "safetensors")});
  return parse(std::move(b), path.string());
}

SafetensorsFile SafetensorsFile::from_bytes(std::vector<std::byte> bytes, std::string label) {
  auto b = std::make_unique<Backing>(Backing{StoredMapping::from_bytes(std::move(bytes))});
  return parse(std::move(b), std::move(label));
}

SafetensorsFile SafetensorsFile::parse(std::unique_ptr<Backing> backing, std::string label) {
  std::span<const std::byte> all = backing->mapping.bytes();
  if (all.size() < 8) fail("safetensors {}: file is {} bytes, shorter than the 8-byte header length", label, all.size());
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | uint64_t(all[size_t(i)]);
  if (n > kMaxHeader) fail("safetensors {}: header length {} is absurd (limit {})", label, n, kMaxHeader);
  if (n > all.size() - 8)
    fail("safetensors {}: header length {} runs past the end of the {}-byte file", label, n, all.size());
  const char* hdr = reinterpret_cast<const char*>(all.data() + 8);
  if (n == 0 || hdr[0] != '{') fail("safetensors {}: header does not start with '{{'", label);

  json h;
  try {
    h = json::parse(hdr, hdr + n);
  } catch (const json::exception& e) {
    fail("safetensors {}: header is not valid JSON: {}", label, e.what());
  }
  if (!h.is_object()) fail("safetensors {}: header is not a JSON object", label);
  if (std::optional<std::string> dup = first_duplicate_top_level_key(hdr, n))
    fail("safetensors {}: duplicate tensor name '{}'", label, printable(*dup));

  SafetensorsFile f;
  f.label_ = std::move(label);
  std::vector<Parsed> entries;
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (it->is_null()) continue;
      if (!it->is_object()) fail("safetensors {}: __metadata__ is not an object", f.label_);
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) fail("safetensors {}: __metadata__ value of '{}' is not a string", f.label_,
                                   printable(m.key()));
        f.metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(f.label_, it.key(), *it));
  }

  // The data area must be covered exactly: sorted by offset, each range starts where the last ended.
  std::sort(entries.begin(), entries.end(), [](const Parsed& a, const Parsed& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const uint64_t data_size = all.size() - 8 - n;
  const std::byte* data = all.data() + 8 + n;
  uint64_t pos = 0;
  const std::string* prev = nullptr;
  for (const Parsed& p : entries) {
    if (p.begin > pos)
      fail("safetensors {}: gap in the data: tensor '{}' starts at {} but the previous one ends at {}", f.label_,
           printable(p.view.name), p.begin, pos);
    if (p.begin < pos)
      fail("safetensors {}: tensor '{}' overlaps '{}' (starts at {}, before {})", f.label_,
           printable(p.view.name), prev ? printable(*prev) : std::string("?"), p.begin, pos);
    if (p.end > data_size)
      fail("safetensors {}: tensor '{}' data_offsets [{}, {}] run past the {}-byte data area", f.label_,
           printable(p.view.name), p.begin, p.end, data_size);
    pos = p.end;
    prev = &p.view.name;
  }
  if (pos != data_size)
    fail("safetensors {}: tensors cover {} bytes of the {}-byte data area (trailing or missing bytes)", f.label_,
         pos, data_size);

  for (Parsed& p : entries) {
    p.view.bytes = std::span<const std::byte>(data + p.begin, p.end - p.begin);
    f.index_.emplace(p.view.name, f.tensors_.size());
    f.tensors_.push_back(std::move(p.view));
  }
  f.backing_ = std::move(backing);
  return f;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

const SafetensorsView* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const SafetensorsView& SafetensorsFile::at(std::string_view name) const {
  if (const SafetensorsView* v = find(name)) return *v;
  fail("safetensors {}: no tensor named '{}'", label_, printable(name));
}

}  // namespace rtune::io
