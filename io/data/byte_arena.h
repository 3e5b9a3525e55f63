// Memory for many long-lived buffers that are freed all at once (the decoded-image cache): carved
// from large anonymous mappings (Linux mmap) with a bump pointer, instead of one fresh mmap per
// image (what malloc does for blocks over its 128 KiB threshold) and a vector header each. The
// kernel still zeroes each page once: that is most of what filling the cache costs beyond decoding.
// A new mapping is populated in one call (MADV_POPULATE_WRITE: 2.3-3.5 against 1.6-2.1 GB/s
// page-by-page first touch on the 2-core VM this was tuned on). Transparent huge pages
// (MADV_HUGEPAGE) measured slower there (0.45-1.05 GB/s in 4 of 6 runs), so they are not asked for.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace rtune::io {

class ByteArena {
 public:
  // Mappings of `chunk_bytes` (a larger request gets one of its own size).
  explicit ByteArena(size_t chunk_bytes);
  ~ByteArena();
  ByteArena(const ByteArena&) = delete;
  ByteArena& operator=(const ByteArena&) = delete;

  // `bytes` of uninitialised memory, 64-byte aligned, valid until clear() or destruction.
  // Thread-safe. Throws rtune::Error when the system has no memory left to map.
  uint8_t* allocate(size_t bytes);
  // Unmaps everything. Not safe while other threads use the arena or its memory.
  void clear();
  // Bytes mapped so far (touched or not).
  size_t mapped_bytes() const;

 private:
  struct Chunk {
    uint8_t* base;
    size_t size, used;
  };
  mutable std::mutex mu_;
  std::vector<Chunk> chunks_;
  size_t chunk_bytes_;
};

}  // namespace rtune::io
