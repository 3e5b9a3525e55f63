// Reads PyTorch checkpoints (.pth/.pt) without Python and without executing anything.
// Formats: the zip archive torch.save writes since 1.6 (data.pkl + data/<key> records, ZIP64, CRCs)
// and the legacy pre-1.6 stream (magic, protocol, sys_info, object, storage keys, raw storages),
// matching torch/serialization.py _load / _legacy_load. Pickles run on a restricted machine
// (io/formats/pickle_vm.h): only tensor rebuilds and plain data, any other global is refused by name.
// The state dict is found inside training checkpoints ({"state_dict": ...}, {"model": ...}, nested),
// and a DataParallel "module." (or torch.compile "_orig_mod.") prefix on every key is stripped.
#pragma once
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "engine/error.h"
#include "io/formats/stored_tensor.h"

namespace rtune::io {

struct PthOptions {
  // "" = auto-detect the state dict; else the dict under this key ("a/b" for nested dicts).
  std::string key;
};

struct PthContents {
  std::vector<std::pair<std::string, StoredTensor>> tensors;  // file order; prefix stripped
  std::string source_key;          // e.g. "state_dict" when the weights were nested, "" at top level
  std::vector<std::string> notes;  // e.g. "stripped 'module.' prefix", "ignored non-tensor entry epoch"
};

// Throws rtune::Error naming the file and the problem (bad archive, refused global, bounds, ...).
PthContents load_pth(const std::filesystem::path& path, const PthOptions& opts = {});
// The same on bytes in memory (tests, fuzzing); `label` names them in errors.
PthContents load_pth_bytes(std::span<const std::byte> bytes, const std::string& label, const PthOptions& opts = {});

}  // namespace rtune::io
