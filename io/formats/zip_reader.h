// A minimal, bounds-checked reader for the zip archives torch.save writes (miniz, ZIP64 always on):
// sizes come from the central directory (local headers carry zeros), data starts after the *local*
// name and extra field (which holds torch's 64-byte alignment padding), entries are stored
// uncompressed. Matches caffe2/serialize/inline_container.cc getRecordOffset / PyTorchStreamReader.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rtune::io {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;             // 0 = stored; anything else is refused on read
  uint32_t crc = 0;                // from the central directory; 0 = not recorded (torch can switch CRCs off)
  uint64_t compressed_size = 0, size = 0;
  uint64_t local_header_offset = 0;
  uint64_t data_offset = 0;        // first data byte, from the local header
};

class ZipReader {
 public:
  // Parses the end records (classic and ZIP64), the central directory and every local header.
  // Throws rtune::Error prefixed "`label`: zip: ..." when anything points outside the bytes.
  ZipReader(std::span<const std::byte> bytes, std::string label);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(std::string_view name) const;
  // The entry's bytes (a view into the archive). Refuses compressed entries and, when the central
  // directory records a non-zero CRC, checks it.
  std::span<const std::byte> read(const ZipEntry& e) const;

 private:
  std::span<const std::byte> bytes_;
  std::string label_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> index_;  // name -> position in entries_
};

uint32_t crc32(std::span<const std::byte> data);  // the zip/zlib CRC-32

}  // namespace rtune::io
