// .pth loading (see pth.h): format detection, the zip and legacy containers, storage resolution with
// size checks, and picking the state dict out of the unpickled object.
#include "io/formats/pth.h"

#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <unordered_map>

#include "engine/error.h"
#include "engine/printable.h"
#include "io/formats/pickle_vm.h"
#include "io/formats/stored_checked.h"
#include "io/formats/stored_mapping.h"
#include "io/formats/zip_reader.h"

namespace rtune::io {

namespace {

using pickle::Kind;
using pickle::Node;
using pickle::StorageRef;
using pickle::TensorRef;
using pickle::Unpickler;
using Bytes = std::shared_ptr<const std::vector<std::byte>>;

// Returns the whole storage a persistent id names (checked against its declared size).
using StorageSource = std::function<Bytes(const StorageRef&)>;

// torch/serialization.py _legacy_save: magic 0x1950a86a20f9469cfc6c pickled as LONG1, little-endian.
constexpr unsigned char kLegacyMagic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

std::string dict_keys(const Unpickler& up, const Node& d) {
  std::vector<std::string> keys;
  for (size_t i = 0; i + 1 < d.items.size(); i += 2) {
    const Node& k = up.node(d.items[i]);
    keys.push_back(k.kind == Kind::Str ? k.s : std::string("<") + pickle::kind_name(k.kind) + ">");
  }
  return keys.empty() ? "(none)" : printable_list(keys);
}

// A checkpoint may hold thousands of non-tensor entries: the notes name the first few, count the rest.
void cap_ignored_notes(std::vector<std::string>& notes) {
  if (notes.size() <= kMaxPrintedNames) return;
  const size_t more = notes.size() - kMaxPrintedNames;
  notes.resize(kMaxPrintedNames);
  notes.push_back(fmt::format("… and {} more ignored entries", more));
}

const Node* dict_get(const Unpickler& up, const Node& d, std::string_view key) {
  for (size_t i = 0; i + 1 < d.items.size(); i += 2) {
    const Node& k = up.node(d.items[i]);
    if (k.kind == Kind::Str && k.s == key) return &up.node(d.items[i + 1]);
  }
  return nullptr;
}

bool all_tensors(const Unpickler& up, const Node& d) {
  if (d.items.empty()) return false;
  for (size_t i = 1; i < d.items.size(); i += 2)
    if (up.node(d.items[i]).kind != Kind::Tensor) return false;
  return true;
}

bool any_tensor(const Unpickler& up, const Node& d) {
  for (size_t i = 1; i < d.items.size(); i += 2)
    if (up.node(d.items[i]).kind == Kind::Tensor) return true;
  return false;
}

// The dict holding the weights: opts.key if given, else the top level when it is all tensors, else
// under state_dict / model_state_dict / model / net (recursively), else the top level's tensors.
const Node& select_state_dict(const Unpickler& up, const Node& root, const std::string& label, const PthOptions& opts,
                              PthContents& out) {
  if (root.kind != Kind::Dict) fail("pth {}: the file holds a {}, not a dict of tensors", label, pickle::kind_name(root.kind));
  if (!opts.key.empty()) {
    const Node* cur = &root;
    size_t start = 0;
    while (start <= opts.key.size()) {
      size_t slash = opts.key.find('/', start);
      std::string part = opts.key.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
      const Node* next = dict_get(up, *cur, part);
      if (!next) fail("pth {}: no key '{}' (keys: {})", label, printable(part), dict_keys(up, *cur));
      if (next->kind != Kind::Dict)
        fail("pth {}: '{}' holds a {}, not a dict", label, printable(part), pickle::kind_name(next->kind));
      cur = next;
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    out.source_key = opts.key;
    return *cur;
  }
  const Node* cur = &root;
  std::string path;
  for (int level = 0; level < 4; ++level) {
    if (all_tensors(up, *cur)) break;
    const Node* inner = nullptr;
    for (const char* k : {"state_dict", "model_state_dict", "model", "net"}) {
      const Node* v = dict_get(up, *cur, k);
      if (v && v->kind == Kind::Dict) {
        inner = v;
        for (size_t i = 0; i + 1 < cur->items.size(); i += 2) {  // say what the descent leaves behind
          const Node& sk = up.node(cur->items[i]);
          if (sk.kind == Kind::Str && sk.s != k) {
            const Kind vk = up.node(cur->items[i + 1]).kind;
            out.notes.push_back(std::string(vk == Kind::Tensor ? "ignored tensor entry " : "ignored non-tensor entry ") +
                                printable(sk.s) + " (" + pickle::kind_name(vk) + ") beside '" + k + "'");
          }
        }
        path += (path.empty() ? "" : "/") + std::string(k);
        break;
      }
    }
    if (!inner) break;
    cur = inner;
  }
  if (!any_tensor(up, *cur))
    fail("pth {}: no tensors found{}; keys: {} (pass a key to pick the state dict)", label,
         path.empty() ? "" : " under '" + path + "'", dict_keys(up, *cur));
  out.source_key = path;
  return *cur;
}

// Strips `prefix` when every name carries it (DataParallel's "module.", torch.compile's "_orig_mod.").
void strip_common_prefix(PthContents& c, const std::string& prefix) {
  if (c.tensors.empty()) return;
  for (const auto& [name, t] : c.tensors)
    if (name.compare(0, prefix.size(), prefix) != 0) return;
  for (auto& [name, t] : c.tensors) name.erase(0, prefix.size());
  c.notes.push_back("stripped '" + prefix + "' prefix");
}

PthContents assemble(const Unpickler& up, uint32_t root, const std::string& label, const PthOptions& opts,
                     const StorageSource& source) {
  PthContents out;
  const Node& sd = select_state_dict(up, up.node(root), label, opts, out);
  std::map<std::string, Bytes> loaded;        // storage key -> bytes (shared storages load once)
  std::map<std::string, DType> key_dtype;     // a key never holds two dtypes
  std::map<std::string, size_t> position;     // a repeated dict key keeps its first position, last value
  for (size_t i = 0; i + 1 < sd.items.size(); i += 2) {
    const Node& k = up.node(sd.items[i]);
    const Node& v = up.node(sd.items[i + 1]);
    if (k.kind != Kind::Str) fail("pth {}: state dict key is a {}, not a str", label, pickle::kind_name(k.kind));
    if (v.kind != Kind::Tensor) {
      out.notes.push_back("ignored non-tensor entry " + printable(k.s) + " (" + pickle::kind_name(v.kind) + ")");
      continue;
    }
    const TensorRef& tr = up.tensors[size_t(v.i)];
    const StorageRef& sr = up.storages[tr.storage];
    const std::string what = fmt::format("pth {}: tensor '{}'", label, printable(k.s));
    std::optional<DType> dtype = tr.dtype;
    if (!tr.dtype_name.empty() && !dtype) fail("{}: dtype {} is not supported", what, printable(tr.dtype_name));
    if (tr.dtype_name.empty()) {
      if (sr.untyped) fail("{}: an untyped storage needs _rebuild_tensor_v3's dtype", what);
      if (!sr.dtype) fail("{}: storage type {} is not supported (f32 f64 f16 bf16 i64 u8)", what, printable(sr.type_name));
      dtype = sr.dtype;
    }
    auto [kd, fresh] = key_dtype.emplace(sr.key, *dtype);
    if (!fresh && kd->second != *dtype)
      fail("{}: storage '{}' is used as both {} and {}", what, printable(sr.key), dtype_name(kd->second), dtype_name(*dtype));
    Bytes& bytes = loaded[sr.key];
    if (!bytes) bytes = source(sr);

    StoredTensor st;
    st.dtype = *dtype;
    st.shape = tr.shape;
    st.strides = tr.strides;
    st.storage = bytes;
    st.storage_offset = tr.offset;
    int64_t limit = -1;
    if (sr.is_view) {  // legacy storage view: a window of the root storage
      if (!add_ok(st.storage_offset, sr.view_offset, st.storage_offset) || !add_ok(sr.view_offset, sr.view_size, limit))
        fail("{}: storage view offset overflows", what);
    }
    validate_view(st, what, limit);
    auto [pos, first] = position.emplace(k.s, out.tensors.size());
    if (first) out.tensors.emplace_back(k.s, std::move(st));
    else out.tensors[pos->second].second = std::move(st);
  }
  cap_ignored_notes(out.notes);
  strip_common_prefix(out, "module.");
  strip_common_prefix(out, "_orig_mod.");
  return out;
}

Bytes copy_bytes(std::span<const std::byte> s) { return std::make_shared<const std::vector<std::byte>>(s.begin(), s.end()); }

// The byte count a persistent id promises: numel elements (bytes for UntypedStorage).
uint64_t declared_bytes(const StorageRef& r, const std::string& label) {
  int64_t n = 0;
  if (!mul_ok(r.numel, int64_t(r.untyped ? 1 : r.elem_size), n))
    fail("pth {}: storage '{}' size {} x {} overflows", label, printable(r.key), r.numel, r.elem_size);
  return uint64_t(n);
}

PthContents load_zip(std::span<const std::byte> bytes, const std::string& label, const PthOptions& opts) {
  ZipReader zip(bytes, "pth " + label);
  if (zip.entries().empty()) fail("pth {}: empty zip archive", label);
  const std::string& first = zip.entries().front().name;
  const size_t slash = first.find('/');
  if (slash == std::string::npos) fail("pth {}: zip entries are not under one folder (first is '{}')", label, printable(first));
  const std::string prefix = first.substr(0, slash + 1);
  for (const ZipEntry& e : zip.entries())
    if (e.name == prefix + "constants.pkl")
      fail("pth {}: this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint", label);
  if (const ZipEntry* bo = zip.find(prefix + "byteorder")) {
    std::span<const std::byte> b = zip.read(*bo);
    std::string order(reinterpret_cast<const char*>(b.data()), b.size());
    if (order != "little") fail("pth {}: byteorder is '{}'; rtune reads little-endian checkpoints only", label, printable(order));
  }
  const ZipEntry* pkl = zip.find(prefix + "data.pkl");
  if (!pkl) fail("pth {}: no {}data.pkl in the archive", label, printable(prefix));
  std::span<const std::byte> program = zip.read(*pkl);
  Unpickler up("pth " + label + ": data.pkl");
  size_t pos = 0;
  const uint32_t root = up.run(program, pos);
  return assemble(up, root, label, opts, [&](const StorageRef& r) {
    const ZipEntry* e = zip.find(prefix + "data/" + r.key);
    if (!e) fail("pth {}: storage record data/{} is missing", label, printable(r.key));
    const uint64_t want = declared_bytes(r, label);
    if (e->size != want)
      fail("pth {}: storage record data/{} holds {} bytes but {} x {} needs {}", label, printable(r.key), e->size,
           r.numel, printable(r.type_name), want);
    return copy_bytes(zip.read(*e));
  });
}

PthContents load_legacy(std::span<const std::byte> bytes, const std::string& label, const PthOptions& opts) {
  Unpickler up("pth " + label + ": legacy pickle");
  size_t pos = 0;
  const Node& magic = up.node(up.run(bytes, pos));
  if (magic.kind != Kind::BigInt || magic.s.size() != sizeof(kLegacyMagic) ||
      std::memcmp(magic.s.data(), kLegacyMagic, sizeof(kLegacyMagic)) != 0)
    fail("pth {}: not a PyTorch checkpoint (no zip header and no legacy magic number)", label);
  const Node& proto = up.node(up.run(bytes, pos));
  if (proto.kind != Kind::Int || proto.i != 1001)
    fail("pth {}: legacy protocol version {} is not 1001", label, proto.kind == Kind::Int ? std::to_string(proto.i) : "?");
  const Node& sys_info = up.node(up.run(bytes, pos));
  if (sys_info.kind != Kind::Dict) fail("pth {}: legacy sys_info is not a dict", label);
  if (const Node* le = dict_get(up, sys_info, "little_endian"); le && !(le->kind == Kind::Bool && le->b))
    fail("pth {}: big-endian legacy checkpoint; rtune reads little-endian ones only", label);
  const uint32_t root = up.run(bytes, pos);
  const Node& keys = up.node(up.run(bytes, pos));
  if (keys.kind != Kind::List) fail("pth {}: legacy storage key list is not a list", label);

  // Raw storages follow, in key-list order: i64 LE element count, then the bytes.
  std::unordered_map<std::string, const StorageRef*> by_key;
  for (const StorageRef& r : up.storages) by_key.emplace(r.key, &r);
  std::unordered_map<std::string, std::span<const std::byte>> raw;
  for (uint32_t ki : keys.items) {
    const Node& k = up.node(ki);
    if (k.kind != Kind::Str) fail("pth {}: legacy storage key is not a str", label);
    auto it = by_key.find(k.s);
    if (it == by_key.end()) fail("pth {}: legacy storage '{}' is listed but no tensor uses it", label, printable(k.s));
    if (bytes.size() - pos < 8) fail("pth {}: legacy storage '{}' is cut off (truncated file?)", label, printable(k.s));
    int64_t count = 0;
    for (int i = 7; i >= 0; --i) count = int64_t((uint64_t(count) << 8) | uint64_t(bytes[pos + size_t(i)]));
    pos += 8;
    const StorageRef& r = *it->second;
    int64_t nbytes = 0;
    if (count < 0 || !mul_ok(count, int64_t(r.untyped ? 1 : r.elem_size), nbytes) || uint64_t(nbytes) > bytes.size() - pos)
      fail("pth {}: legacy storage '{}' of {} elements runs past the end of the file", label, printable(k.s), count);
    if (count != r.numel)
      fail("pth {}: legacy storage '{}' holds {} elements but its persistent id says {}", label, printable(k.s), count, r.numel);
    if (!raw.emplace(k.s, bytes.subspan(pos, size_t(nbytes))).second)
      fail("pth {}: legacy storage '{}' is listed twice", label, printable(k.s));
    pos += size_t(nbytes);
  }
  if (pos != bytes.size()) fail("pth {}: {} unexpected bytes after the legacy storages", label, bytes.size() - pos);
  return assemble(up, root, label, opts, [&](const StorageRef& r) {
    auto it = raw.find(r.key);
    if (it == raw.end()) fail("pth {}: legacy storage '{}' is used but not in the key list", label, printable(r.key));
    return copy_bytes(it->second);
  });
}

}  // namespace

PthContents load_pth_bytes(std::span<const std::byte> bytes, const std::string& label, const PthOptions& opts) {
  auto starts = [&](std::string_view sig, size_t at = 0) {
    return bytes.size() >= at + sig.size() && std::memcmp(bytes.data() + at, sig.data(), sig.size()) == 0;
  };
  if (starts("PK\x03\x04")) return load_zip(bytes, label, opts);
  if (starts("\x80")) return load_legacy(bytes, label, opts);
  if (starts("ustar", 257)) fail("pth {}: the tar-based checkpoint format (torch < 0.4) is not supported", label);
  fail("pth {}: not a PyTorch checkpoint (neither a zip archive nor a legacy pickle)", label);
}

PthContents load_pth(const std::filesystem::path& path, const PthOptions& opts) {
  StoredMapping m = StoredMapping::map_file(path, "pth");
  return load_pth_bytes(m.bytes(), path.string(), opts);
}

}  // namespace rtune::io
