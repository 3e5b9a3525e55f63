// The restricted unpickler (see pickle_vm.h). Opcode semantics follow CPython Lib/pickle.py
// (_Unpickler.load_*); what is allowed follows torch/_weights_only_unpickler.py.
#include "io/formats/pickle_vm.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "engine/error.h"
#include "engine/printable.h"

namespace rtune::io::pickle {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::BigInt: return "int";
    case Kind::Float: return "float";
    case Kind::Str: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Set: return "set";
    case Kind::Global: return "global";
    case Kind::Storage: return "storage";
    case Kind::Tensor: return "tensor";
    case Kind::Object: return "object";
  }
  return "?";
}

namespace {

struct GlobalInfo {
  GlobalTag tag;
  std::optional<DType> dtype;
  size_t elem_size = 0;  // storage types
};

// The whole allow-list: (module.name) -> what it means. Nothing else resolves.
const std::map<std::string, GlobalInfo, std::less<>>& allow_list() {
  static const std::map<std::string, GlobalInfo, std::less<>> table = [] {
    std::map<std::string, GlobalInfo, std::less<>> t;
    t["collections.OrderedDict"] = {GlobalTag::OrderedDict};
    t["torch._utils._rebuild_tensor"] = {GlobalTag::RebuildTensor};
    t["torch._utils._rebuild_tensor_v2"] = {GlobalTag::RebuildTensorV2};
    t["torch._utils._rebuild_tensor_v3"] = {GlobalTag::RebuildTensorV3};
    t["torch._utils._rebuild_parameter"] = {GlobalTag::RebuildParameter};
    t["torch._utils._rebuild_parameter_with_state"] = {GlobalTag::RebuildParameterWithState};
    struct S { const char* n; std::optional<DType> d; size_t sz; };
    for (S s : {S{"Double", DType::f64, 8}, S{"Float", DType::f32, 4}, S{"Half", DType::f16, 2},
                S{"BFloat16", DType::bf16, 2}, S{"Long", DType::i64, 8}, S{"Byte", DType::u8, 1},
                S{"Int", std::nullopt, 4}, S{"Short", std::nullopt, 2}, S{"Char", std::nullopt, 1},
                S{"Bool", std::nullopt, 1}, S{"ComplexFloat", std::nullopt, 8}, S{"ComplexDouble", std::nullopt, 16}})
      t[std::string("torch.") + s.n + "Storage"] = {GlobalTag::StorageType, s.d, s.sz};
    t["torch.storage.UntypedStorage"] = {GlobalTag::StorageType, std::nullopt, 1};
    t["torch.UntypedStorage"] = {GlobalTag::StorageType, std::nullopt, 1};
    struct D { const char* n; std::optional<DType> d; };
    for (D d : {D{"float32", DType::f32}, D{"float", DType::f32}, D{"float64", DType::f64}, D{"double", DType::f64},
                D{"float16", DType::f16}, D{"half", DType::f16}, D{"bfloat16", DType::bf16}, D{"int64", DType::i64},
                D{"long", DType::i64}, D{"uint8", DType::u8}, D{"int32", std::nullopt}, D{"int", std::nullopt},
                D{"int16", std::nullopt}, D{"short", std::nullopt}, D{"int8", std::nullopt}, D{"bool", std::nullopt},
                D{"uint16", std::nullopt}, D{"uint32", std::nullopt}, D{"uint64", std::nullopt},
                D{"complex32", std::nullopt}, D{"complex64", std::nullopt}, D{"complex128", std::nullopt},
                D{"float8_e4m3fn", std::nullopt}, D{"float8_e5m2", std::nullopt}})
      t[std::string("torch.") + d.n] = {GlobalTag::DTypeObj, d.d};
    t["torch.Size"] = {GlobalTag::TorchSize};
    t["torch.device"] = {GlobalTag::TorchDevice};
    t["_codecs.encode"] = {GlobalTag::CodecsEncode};
    t["builtins.set"] = t["__builtin__.set"] = {GlobalTag::BuiltinSet};
    t["builtins.frozenset"] = t["__builtin__.frozenset"] = {GlobalTag::BuiltinFrozenset};
    t["builtins.bytearray"] = t["__builtin__.bytearray"] = {GlobalTag::BuiltinBytearray};
    t["argparse.Namespace"] = {GlobalTag::Inert};  // torchvision's train.py saves its args in checkpoints
    return t;
  }();
  return table;
}

// UTF-8 -> Latin-1 bytes, as _codecs.encode(s, 'latin1') does; false if a code point is > 0xFF.
bool utf8_to_latin1(const std::string& s, std::string& out) {
  out.clear();
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out.push_back(char(c));
      ++i;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < s.size()) {
      unsigned cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
      if (cp > 0xFF) return false;
      out.push_back(char(cp));
      i += 2;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

void Unpickler::bad(const std::string& msg) const { fail("{}: {} (pickle offset {})", label_, msg, op_at_); }

uint32_t Unpickler::add(Node n) {
  if (nodes_.size() >= lim_.max_nodes) bad(fmt::format("more than {} pickle values", lim_.max_nodes));
  nodes_.push_back(std::move(n));
  return uint32_t(nodes_.size() - 1);
}

uint32_t Unpickler::pop() {
  const size_t fence = marks_.empty() ? 0 : marks_.back();
  if (stack_.size() <= fence) bad("stack underflow");
  uint32_t v = stack_.back();
  stack_.pop_back();
  return v;
}

std::vector<uint32_t> Unpickler::pop_mark() {
  if (marks_.empty()) bad("opcode needs a MARK but none is open");
  const size_t m = marks_.back();
  marks_.pop_back();
  std::vector<uint32_t> items(stack_.begin() + std::ptrdiff_t(m), stack_.end());
  stack_.resize(m);
  return items;
}

void Unpickler::push_child(uint32_t parent, uint32_t child) {
  const uint32_t d = nodes_[child].depth + 1;
  if (d > lim_.max_depth) bad(fmt::format("values nested deeper than {} (recursion bomb?)", lim_.max_depth));
  Node& p = nodes_[parent];
  p.items.push_back(child);
  p.depth = std::max(p.depth, d);
}

int64_t Unpickler::as_int(uint32_t n, const char* what) const {
  const Node& v = nodes_[n];
  if (v.kind == Kind::Int) return v.i;
  if (v.kind == Kind::Bool) return v.b;
  bad(fmt::format("{} must be an int, got {}", what, kind_name(v.kind)));
}

std::vector<int64_t> Unpickler::as_int_tuple(uint32_t n, const char* what) const {
  const Node& v = nodes_[n];
  if (v.kind != Kind::Tuple && v.kind != Kind::List) bad(fmt::format("{} must be a tuple, got {}", what, kind_name(v.kind)));
  std::vector<int64_t> out;
  for (uint32_t c : v.items) out.push_back(as_int(c, what));
  return out;
}

uint32_t Unpickler::global(const std::string& module, const std::string& name) {
  const std::string full = module + "." + name;
  auto it = allow_list().find(full);
  if (it == allow_list().end()) bad(fmt::format("refusing global {} (only tensor rebuilds and plain data are allowed)", printable(full)));
  Node n;
  n.kind = Kind::Global;
  n.tag = it->second.tag;
  n.dtype = it->second.dtype;
  n.i = int64_t(it->second.elem_size);
  n.s = full;
  return add(std::move(n));
}

uint32_t Unpickler::persistent_load(uint32_t pid) {
  const Node& t = nodes_[pid];
  if (t.kind != Kind::Tuple || t.items.size() < 5 || t.items.size() > 6 || nodes_[t.items[0]].kind != Kind::Str ||
      nodes_[t.items[0]].s != "storage")
    bad("persistent id is not ('storage', type, key, location, numel[, view])");
  const Node& type = nodes_[t.items[1]];
  if (type.kind != Kind::Global || type.tag != GlobalTag::StorageType)
    bad(fmt::format("persistent id names {} instead of a storage class",
                    type.kind == Kind::Global ? printable(type.s) : kind_name(type.kind)));
  StorageRef r;
  r.type_name = type.s;
  r.dtype = type.dtype;
  r.untyped = type.s.find("UntypedStorage") != std::string::npos;
  r.elem_size = size_t(type.i);
  const Node& key = nodes_[t.items[2]];
  if (key.kind == Kind::Str) r.key = key.s;
  else if (key.kind == Kind::Int) r.key = std::to_string(key.i);
  else bad("storage key must be a str");
  if (nodes_[t.items[3]].kind != Kind::Str) bad("storage location must be a str");
  r.location = nodes_[t.items[3]].s;
  r.numel = as_int(t.items[4], "storage numel");
  if (r.numel < 0) bad("negative storage numel");
  if (t.items.size() == 6 && nodes_[t.items[5]].kind != Kind::None) {
    const Node& v = nodes_[t.items[5]];
    if (v.kind != Kind::Tuple || v.items.size() != 3 || nodes_[v.items[0]].kind != Kind::Str)
      bad("storage view metadata is not (key, offset, size)");
    r.is_view = true;
    r.view_key = nodes_[v.items[0]].s;
    r.view_offset = as_int(v.items[1], "storage view offset");
    r.view_size = as_int(v.items[2], "storage view size");
    if (r.view_offset < 0 || r.view_size < 0) bad("negative storage view offset or size");
  }
  storages.push_back(std::move(r));
  Node n;
  n.kind = Kind::Storage;
  n.i = int64_t(storages.size() - 1);
  return add(std::move(n));
}

uint32_t Unpickler::rebuild_tensor(GlobalTag tag, const std::vector<uint32_t>& a) {
  const size_t lo = tag == GlobalTag::RebuildTensor ? 4 : tag == GlobalTag::RebuildTensorV2 ? 6 : 7;
  if (a.size() < lo || a.size() > lo + 1) bad(fmt::format("tensor rebuild takes {} or {} arguments, got {}", lo, lo + 1, a.size()));
  if (nodes_[a[0]].kind != Kind::Storage) bad(fmt::format("tensor rebuild needs a storage, got {}", kind_name(nodes_[a[0]].kind)));
  TensorRef t;
  t.storage = uint32_t(nodes_[a[0]].i);
  t.offset = as_int(a[1], "storage offset");
  t.shape = as_int_tuple(a[2], "tensor size");
  t.strides = as_int_tuple(a[3], "tensor stride");
  if (tag == GlobalTag::RebuildTensorV3) {
    const Node& d = nodes_[a[6]];
    if (d.kind != Kind::Global || d.tag != GlobalTag::DTypeObj) bad("_rebuild_tensor_v3 needs a torch dtype");
    t.dtype = d.dtype;
    t.dtype_name = d.s;
  }
  if (tag != GlobalTag::RebuildTensor && a.size() == lo + 1) {  // metadata: conj/neg bits and the like
    const Node& m = nodes_[a[lo]];
    if (!(m.kind == Kind::None || (m.kind == Kind::Dict && m.items.empty())))
      bad("tensor metadata (conjugate/negative bits) is not supported");
  }
  tensors.push_back(std::move(t));
  Node n;
  n.kind = Kind::Tensor;
  n.i = int64_t(tensors.size() - 1);
  return add(std::move(n));
}

uint32_t Unpickler::reduce(uint32_t callable, uint32_t args) {
  const Node& f = nodes_[callable];
  if (f.kind != Kind::Global) bad(fmt::format("REDUCE calls a {}, not an allowed global", kind_name(f.kind)));
  if (nodes_[args].kind != Kind::Tuple) bad("REDUCE arguments are not a tuple");
  const GlobalTag tag = f.tag;
  const std::string fname = f.s;
  const std::vector<uint32_t> a = nodes_[args].items;
  auto container = [&](Kind k, std::vector<uint32_t> from) {  // by value: add() may move nodes_
    Node n;
    n.kind = k;
    uint32_t id = add(std::move(n));
    for (uint32_t c : from) push_child(id, c);
    return id;
  };
  switch (tag) {
    case GlobalTag::OrderedDict: {
      uint32_t d = container(Kind::Dict, {});
      if (a.empty()) return d;
      const Node& src = nodes_[a[0]];
      if (a.size() != 1 || (src.kind != Kind::List && src.kind != Kind::Tuple)) bad("OrderedDict() takes a list of pairs");
      const std::vector<uint32_t> pairs = src.items;
      for (uint32_t p : pairs) {
        const Node& kv = nodes_[p];
        if ((kv.kind != Kind::Tuple && kv.kind != Kind::List) || kv.items.size() != 2) bad("OrderedDict() item is not a pair");
        const uint32_t k = kv.items[0], v = kv.items[1];
        push_child(d, k);
        push_child(d, v);
      }
      return d;
    }
    case GlobalTag::RebuildTensor:
    case GlobalTag::RebuildTensorV2:
    case GlobalTag::RebuildTensorV3: return rebuild_tensor(tag, a);
    case GlobalTag::RebuildParameter:
    case GlobalTag::RebuildParameterWithState:
      if (a.size() != (tag == GlobalTag::RebuildParameter ? 3u : 4u) || nodes_[a[0]].kind != Kind::Tensor)
        bad(fmt::format("{} needs (tensor, requires_grad, hooks{})", fname, tag == GlobalTag::RebuildParameter ? "" : ", state"));
      return a[0];
    case GlobalTag::TorchSize:
      if (a.size() != 1 || nodes_[a[0]].kind != Kind::Tuple) bad("torch.Size() takes one tuple");
      return container(Kind::Tuple, nodes_[a[0]].items);
    case GlobalTag::TorchDevice: {
      if (a.empty() || a.size() > 2 || nodes_[a[0]].kind != Kind::Str) bad("torch.device() takes (type[, index])");
      Node n;
      n.kind = Kind::Str;
      n.s = nodes_[a[0]].s;
      if (a.size() == 2) n.s += ":" + std::to_string(as_int(a[1], "device index"));
      return add(std::move(n));
    }
    case GlobalTag::CodecsEncode: {
      if (a.size() != 2 || nodes_[a[0]].kind != Kind::Str || nodes_[a[1]].kind != Kind::Str ||
          (nodes_[a[1]].s != "latin1" && nodes_[a[1]].s != "latin-1"))
        bad("_codecs.encode() is allowed only as (str, 'latin1')");
      Node n;
      n.kind = Kind::Bytes;
      if (!utf8_to_latin1(nodes_[a[0]].s, n.s)) bad("_codecs.encode(): text is not Latin-1");
      return add(std::move(n));
    }
    case GlobalTag::BuiltinSet:
    case GlobalTag::BuiltinFrozenset: {
      if (a.empty()) return container(Kind::Set, {});
      const Node& src = nodes_[a[0]];
      if (a.size() != 1 || (src.kind != Kind::List && src.kind != Kind::Tuple && src.kind != Kind::Set))
        bad(fmt::format("{}() takes one list", fname));
      return container(Kind::Set, src.items);
    }
    case GlobalTag::BuiltinBytearray: {
      Node n;
      n.kind = Kind::Bytes;
      if (!a.empty()) {
        const Node& src = nodes_[a[0]];
        if (src.kind == Kind::Bytes && a.size() == 1) n.s = src.s;
        else if (src.kind == Kind::Str && a.size() == 2 && utf8_to_latin1(src.s, n.s)) {}
        else bad("bytearray() takes bytes or (str, 'latin-1')");
      }
      return add(std::move(n));
    }
    case GlobalTag::Inert: {
      Node n;
      n.kind = Kind::Object;
      n.s = fname;
      return add(std::move(n));
    }
    case GlobalTag::StorageType:
    case GlobalTag::DTypeObj: break;
  }
  bad(fmt::format("{} cannot be called", fname));
}

uint32_t Unpickler::run(std::span<const std::byte> data, size_t& pos) {
  stack_.clear();
  marks_.clear();
  memo_.clear();
  const size_t size = data.size();
  auto need = [&](uint64_t n) {
    if (pos > size || n > size - pos) bad("pickle data ends early (truncated?)");
  };
  auto u8 = [&] { need(1); return uint64_t(data[pos++]); };
  auto le = [&](int n) {
    need(uint64_t(n));
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | uint64_t(data[pos + size_t(i)]);
    pos += size_t(n);
    return v;
  };
  auto text = [&](uint64_t n) {
    need(n);
    std::string s(reinterpret_cast<const char*>(data.data() + pos), size_t(n));
    pos += size_t(n);
    return s;
  };
  auto line = [&] {
    for (size_t e = pos; e < size && e - pos < 512; ++e)
      if (data[e] == std::byte{'\n'}) {
        std::string s = text(e - pos);
        ++pos;
        return s;
      }
    bad("unterminated GLOBAL name");
  };
  auto push = [&](uint32_t v) { stack_.push_back(v); };
  auto scalar = [&](Kind k) {
    Node n;
    n.kind = k;
    return n;
  };
  auto container = [&](Kind k, std::vector<uint32_t> items) {
    uint32_t id = add(scalar(k));
    for (uint32_t c : items) push_child(id, c);
    return id;
  };
  auto int_node = [&](int64_t v) {
    Node n = scalar(Kind::Int);
    n.i = v;
    return add(std::move(n));
  };
  auto long_node = [&](uint64_t nbytes) {  // LONG1/LONG4: little-endian two's complement
    need(nbytes);
    if (nbytes <= 8) {
      uint64_t v = 0;
      for (uint64_t i = nbytes; i-- > 0;) v = (v << 8) | uint64_t(data[pos + i]);
      if (nbytes > 0 && nbytes < 8 && (v >> (8 * nbytes - 1)) & 1) v |= ~uint64_t(0) << (8 * nbytes);
      pos += size_t(nbytes);
      return int_node(int64_t(v));
    }
    Node n = scalar(Kind::BigInt);
    n.s = text(nbytes);
    return add(std::move(n));
  };
  auto str_node = [&](Kind k, uint64_t n) {
    Node v = scalar(k);
    v.s = text(n);
    return add(std::move(v));
  };
  auto memo_put = [&](uint64_t idx) {
    if (stack_.empty()) bad("memo store with an empty stack");
    if (memo_.size() >= lim_.max_memo && !memo_.count(uint32_t(idx))) bad(fmt::format("more than {} memo entries", lim_.max_memo));
    memo_[uint32_t(idx)] = stack_.back();
  };
  auto memo_get = [&](uint64_t idx) {
    auto it = memo_.find(uint32_t(idx));
    if (it == memo_.end()) bad(fmt::format("memo index {} was never stored", idx));
    push(it->second);
  };
  auto target = [&](Kind want, const char* op) -> uint32_t {
    if (stack_.empty()) bad(fmt::format("{} with an empty stack", op));
    uint32_t t = stack_.back();
    if (nodes_[t].kind != want) bad(fmt::format("{} on a {}", op, kind_name(nodes_[t].kind)));
    return t;
  };

  for (;;) {
    op_at_ = pos;
    const uint64_t op = u8();
    switch (op) {
      case 0x80: if (u8() > 5) bad("unknown pickle protocol"); break;           // PROTO
      case 0x95: le(8); break;                                                   // FRAME (content is inline)
      case '.': {                                                                // STOP
        if (!marks_.empty() || stack_.size() != 1) bad("STOP with an unbalanced stack");
        return stack_.back();
      }
      case '(':                                                                  // MARK
        if (marks_.size() >= lim_.max_marks) bad(fmt::format("MARKs nested deeper than {}", lim_.max_marks));
        marks_.push_back(stack_.size());
        break;
      case '0': pop(); break;                                                    // POP
      case '1': pop_mark(); break;                                               // POP_MARK
      case '2': { uint32_t v = pop(); push(v); push(v); break; }                 // DUP
      case 'N': push(add(scalar(Kind::None))); break;
      case 0x88: case 0x89: { Node n = scalar(Kind::Bool); n.b = op == 0x88; push(add(std::move(n))); break; }
      case 'K': push(int_node(int64_t(u8()))); break;                            // BININT1
      case 'M': push(int_node(int64_t(le(2)))); break;                           // BININT2
      case 'J': push(int_node(int64_t(int32_t(uint32_t(le(4)))))); break;        // BININT
      case 0x8a: { uint64_t n = u8(); push(long_node(n)); break; }               // LONG1
      case 0x8b: {                                                               // LONG4
        int64_t n = int32_t(uint32_t(le(4)));
        if (n < 0) bad("negative LONG4 length");
        push(long_node(uint64_t(n)));
        break;
      }
      case 'G': {                                                                // BINFLOAT, big-endian
        need(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | uint64_t(data[pos + size_t(i)]);
        pos += 8;
        Node n = scalar(Kind::Float);
        std::memcpy(&n.f, &bits, 8);
        push(add(std::move(n)));
        break;
      }
      case 'X': push(str_node(Kind::Str, le(4))); break;                         // BINUNICODE
      case 0x8c: push(str_node(Kind::Str, u8())); break;                         // SHORT_BINUNICODE
      case 0x8d: push(str_node(Kind::Str, le(8))); break;                        // BINUNICODE8
      case 'U': push(str_node(Kind::Str, u8())); break;                          // SHORT_BINSTRING
      case 'T': {                                                                // BINSTRING
        int64_t n = int32_t(uint32_t(le(4)));
        if (n < 0) bad("negative BINSTRING length");
        push(str_node(Kind::Str, uint64_t(n)));
        break;
      }
      case 'C': push(str_node(Kind::Bytes, u8())); break;                        // SHORT_BINBYTES
      case 'B': push(str_node(Kind::Bytes, le(4))); break;                       // BINBYTES
      case 0x8e: push(str_node(Kind::Bytes, le(8))); break;                      // BINBYTES8
      case ')': push(add(scalar(Kind::Tuple))); break;                           // EMPTY_TUPLE
      case 't': { auto items = pop_mark(); push(container(Kind::Tuple, items)); break; }
      case 0x85: case 0x86: case 0x87: {                                         // TUPLE1..3
        std::vector<uint32_t> items(size_t(op - 0x84));
        for (size_t i = items.size(); i-- > 0;) items[i] = pop();
        push(container(Kind::Tuple, items));
        break;
      }
      case ']': push(add(scalar(Kind::List))); break;                            // EMPTY_LIST
      case 'l': { auto items = pop_mark(); push(container(Kind::List, items)); break; }  // LIST
      case 'a': { uint32_t v = pop(); push_child(target(Kind::List, "APPEND"), v); break; }
      case 'e': {                                                                // APPENDS
        auto items = pop_mark();
        uint32_t l = target(Kind::List, "APPENDS");
        for (uint32_t v : items) push_child(l, v);
        break;
      }
      case '}': push(add(scalar(Kind::Dict))); break;                            // EMPTY_DICT
      case 'd': {                                                                // DICT
        auto items = pop_mark();
        if (items.size() % 2) bad("DICT with an odd number of items");
        push(container(Kind::Dict, items));
        break;
      }
      case 's': {                                                                // SETITEM
        uint32_t v = pop(), k = pop();
        uint32_t d = target(Kind::Dict, "SETITEM");
        push_child(d, k);
        push_child(d, v);
        break;
      }
      case 'u': {                                                                // SETITEMS
        auto items = pop_mark();
        if (items.size() % 2) bad("SETITEMS with an odd number of items");
        uint32_t d = target(Kind::Dict, "SETITEMS");
        for (uint32_t v : items) push_child(d, v);
        break;
      }
      case 0x8f: push(add(scalar(Kind::Set))); break;                            // EMPTY_SET
      case 0x90: {                                                               // ADDITEMS
        auto items = pop_mark();
        uint32_t s = target(Kind::Set, "ADDITEMS");
        for (uint32_t v : items) push_child(s, v);
        break;
      }
      case 0x91: { auto items = pop_mark(); push(container(Kind::Set, items)); break; }  // FROZENSET
      case 'q': memo_put(u8()); break;                                           // BINPUT
      case 'r': memo_put(le(4)); break;                                          // LONG_BINPUT
      case 0x94: memo_put(memo_.size()); break;                                  // MEMOIZE
      case 'h': memo_get(u8()); break;                                           // BINGET
      case 'j': memo_get(le(4)); break;                                          // LONG_BINGET
      case 'c': {                                                                // GLOBAL
        std::string module = line();
        std::string name = line();
        push(global(module, name));
        break;
      }
      case 0x93: {                                                               // STACK_GLOBAL
        uint32_t name = pop(), module = pop();
        if (nodes_[name].kind != Kind::Str || nodes_[module].kind != Kind::Str) bad("STACK_GLOBAL needs two strs");
        push(global(nodes_[module].s, nodes_[name].s));
        break;
      }
      case 'i': {                                                                // INST: refuse, naming the class
        std::string module = line();
        std::string name = line();
        global(module, name);
        bad(fmt::format("opcode INST ({}.{}) is not supported", printable(module), printable(name)));
      }
      case 'o': {                                                                // OBJ
        auto items = pop_mark();
        std::string what = items.empty() ? "nothing" : nodes_[items[0]].kind == Kind::Global ? nodes_[items[0]].s : kind_name(nodes_[items[0]].kind);
        bad(fmt::format("opcode OBJ ({}) is not supported", printable(what)));
      }
      case 'R': { uint32_t args = pop(), f = pop(); push(reduce(f, args)); break; }  // REDUCE
      case 0x81: case 0x92: {                                                    // NEWOBJ, NEWOBJ_EX
        if (op == 0x92) pop();
        pop();  // args: ignored, only argument-free record types are constructed
        uint32_t cls = pop();
        const Node& c = nodes_[cls];
        if (c.kind == Kind::Global && c.tag == GlobalTag::Inert) {
          Node n = scalar(Kind::Object);
          n.s = c.s;
          push(add(std::move(n)));
        } else if (c.kind == Kind::Global && c.tag == GlobalTag::OrderedDict) {
          push(add(scalar(Kind::Dict)));
        } else {
          bad(fmt::format("NEWOBJ of {} is not allowed", c.kind == Kind::Global ? printable(c.s) : kind_name(c.kind)));
        }
        break;
      }
      case 'b': {                                                                // BUILD: state is ignored
        pop();
        if (stack_.empty()) bad("BUILD with an empty stack");
        Kind k = nodes_[stack_.back()].kind;
        if (k != Kind::Dict && k != Kind::Object && k != Kind::Tensor) bad(fmt::format("BUILD on a {}", kind_name(k)));
        break;
      }
      case 'Q': { uint32_t pid = pop(); push(persistent_load(pid)); break; }     // BINPERSID
      default:
        bad(fmt::format("unsupported pickle opcode 0x{:02x}", op));
    }
  }
}

}  // namespace rtune::io::pickle
