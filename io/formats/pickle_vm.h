// A restricted unpickler for PyTorch checkpoints, in the spirit of torch/_weights_only_unpickler.py:
// it builds plain data (None, bool, int, float, str, bytes, tuple, list, dict, set) plus tensor and
// storage references, and nothing is ever imported or executed. GLOBALs resolve through a fixed table
// (collections.OrderedDict, torch._utils._rebuild_tensor*/_rebuild_parameter*, storage classes, dtypes,
// torch.Size, torch.device, _codecs.encode, builtins.set/frozenset/bytearray, and argparse.Namespace as
// an inert record); any other global is refused by name. REDUCE/NEWOBJ/BUILD dispatch only on those
// tags. Values live in an arena addressed by index, so cycles and deep chains cannot overflow the C++
// stack on destruction; nesting depth, memo size, node count and mark depth are bounded.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/dtype.h"

namespace rtune::io::pickle {

enum class Kind : uint8_t { None, Bool, Int, BigInt, Float, Str, Bytes, Tuple, List, Dict, Set, Global, Storage, Tensor, Object };
const char* kind_name(Kind k);

enum class GlobalTag : uint8_t {
  OrderedDict, RebuildTensor, RebuildTensorV2, RebuildTensorV3, RebuildParameter, RebuildParameterWithState,
  StorageType, DTypeObj, TorchSize, TorchDevice, CodecsEncode, BuiltinSet, BuiltinFrozenset, BuiltinBytearray,
  Inert,  // a harmless record type (argparse.Namespace): becomes an Object whose state is ignored
};

// A storage as a persistent id names it: ('storage', type, key, location, numel[, view]).
struct StorageRef {
  std::string type_name;         // "torch.FloatStorage", "torch.storage.UntypedStorage"
  std::optional<DType> dtype;    // none for untyped storages and types rtune does not support
  bool untyped = false;          // UntypedStorage: numel counts bytes
  size_t elem_size = 1;          // bytes per element of the storage type
  std::string key, location;
  int64_t numel = 0;
  bool is_view = false;          // legacy view_metadata (view_key, offset, size), offset/size in elements
  std::string view_key;
  int64_t view_offset = 0, view_size = 0;
};

// A tensor rebuild call: _rebuild_tensor{,_v2,_v3}(storage, offset, size, stride, ...).
struct TensorRef {
  uint32_t storage = 0;          // index into Unpickler::storages
  int64_t offset = 0;
  std::vector<int64_t> shape, strides;
  std::optional<DType> dtype;    // _rebuild_tensor_v3's explicit dtype (else the storage's)
  std::string dtype_name;        // the v3 dtype's name, for errors when unsupported
};

struct Node {
  Kind kind = Kind::None;
  GlobalTag tag = GlobalTag::Inert;  // Global
  bool b = false;                    // Bool
  uint32_t depth = 1;                // nesting depth (containers: 1 + deepest child)
  int64_t i = 0;                     // Int; Storage/Tensor: index into storages/tensors
  double f = 0;                      // Float
  std::string s;                     // Str, Bytes, BigInt (LE two's complement), Global "module.name"
  std::optional<DType> dtype;        // Global StorageType / DTypeObj
  std::vector<uint32_t> items;       // Tuple/List/Set elements; Dict k0,v0,k1,v1,...
};

struct Limits {
  size_t max_nodes = size_t(1) << 23;
  size_t max_memo = size_t(1) << 22;
  uint32_t max_depth = 200;   // containers nested deeper than this are refused (recursion bombs)
  size_t max_marks = 1000;
};

class Unpickler {
 public:
  explicit Unpickler(std::string label, Limits limits = {}) : label_(std::move(label)), lim_(limits) {}

  // Runs one pickle starting at `pos` (advanced past its STOP); returns the root node. Several
  // pickles can run one after another (the legacy format); they share the arena, not the memo.
  uint32_t run(std::span<const std::byte> data, size_t& pos);

  const Node& node(uint32_t i) const { return nodes_[i]; }
  std::vector<StorageRef> storages;
  std::vector<TensorRef> tensors;

 private:
  uint32_t add(Node n);
  [[noreturn]] void bad(const std::string& msg) const;
  uint32_t pop();
  std::vector<uint32_t> pop_mark();
  void push_child(uint32_t parent, uint32_t child);
  uint32_t global(const std::string& module, const std::string& name);
  uint32_t reduce(uint32_t callable, uint32_t args);
  uint32_t persistent_load(uint32_t pid);
  uint32_t rebuild_tensor(GlobalTag tag, const std::vector<uint32_t>& a);
  int64_t as_int(uint32_t n, const char* what) const;
  std::vector<int64_t> as_int_tuple(uint32_t n, const char* what) const;

  std::string label_;
  Limits lim_;
  std::vector<Node> nodes_;
  std::vector<uint32_t> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, uint32_t> memo_;
  size_t op_at_ = 0;  // offset of the opcode being run, for errors
};

}  // namespace rtune::io::pickle
