// A read-only view of a whole file's bytes: mmap'd when it is a non-empty regular file, or an owned
// buffer (bytes already in memory). Both weight readers (safetensors, .pth) read through it.
#pragma once
#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace rtune::io {

class StoredMapping {
 public:
  // Maps `path` read-only. Throws rtune::Error naming `what` (e.g. "safetensors") and the path.
  static StoredMapping map_file(const std::filesystem::path& path, std::string_view what);
  static StoredMapping from_bytes(std::vector<std::byte> bytes);

  StoredMapping(StoredMapping&& o) noexcept;
  StoredMapping& operator=(StoredMapping&& o) noexcept;
  StoredMapping(const StoredMapping&) = delete;
  StoredMapping& operator=(const StoredMapping&) = delete;
  ~StoredMapping();

  std::span<const std::byte> bytes() const { return {data_, size_}; }

 private:
  StoredMapping() = default;
  void release() noexcept;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;          // true: data_ came from mmap
  std::vector<std::byte> owned_;  // used when !mapped_
};

}  // namespace rtune::io
