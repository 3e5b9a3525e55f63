// Training checkpoints: named tensors plus a JSON state, stored as a safetensors file (tensors under
// their names, the JSON in __metadata__["rtune.state"], __metadata__["format"] = "rtune-checkpoint").
// Written atomically like torch.save-then-os.replace recipes: the bytes go to a temp file in the same
// folder, are fsync'ed, then rename(2) replaces the target and the folder is fsync'ed. A write that
// fails or is killed half-way leaves the previous checkpoint untouched (and removes its temp file
// when it can).
#pragma once
#include <cstddef>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>
#include <nlohmann/json.hpp>
#include "engine/tensor.h"

namespace rtune::io {

inline constexpr const char* kCheckpointFormat = "rtune-checkpoint";

struct Checkpoint {
  std::vector<std::pair<std::string, Tensor>> tensors;  // names unique; any dtype, any device
  nlohmann::json state = nlohmann::json::object();
  const Tensor* find(const std::string& name) const;
};

// Test hook: called before each chunk is written with the bytes written so far; throwing (or exiting)
// simulates a failure or a crash in the middle of the write.
struct AtomicWriteHooks {
  std::function<void(size_t written, size_t total)> before_chunk;
  size_t chunk_bytes = size_t(1) << 20;
};

// Writes `bytes` to `path` atomically (temp file "<name>.tmp-<pid>", fsync, rename, fsync folder).
// Throws rtune::Error naming the file and the failing call; `path` is then unchanged.
void write_file_atomic(const std::filesystem::path& path, std::span<const std::byte> bytes,
                       const AtomicWriteHooks& hooks = {});

void save_checkpoint(const std::filesystem::path& path, const Checkpoint& ck, const AtomicWriteHooks& hooks = {});
// Throws naming the file when it is missing, corrupt, or not an rtune checkpoint.
Checkpoint load_checkpoint(const std::filesystem::path& path);
// The same on bytes in memory (fuzzing); `label` names them in errors.
Checkpoint load_checkpoint_bytes(std::vector<std::byte> bytes, const std::string& label);

}  // namespace rtune::io
