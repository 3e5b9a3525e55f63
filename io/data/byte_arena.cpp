// ByteArena: see byte_arena.h.
#include "io/data/byte_arena.h"

#include <sys/mman.h>

#include <algorithm>

#include "engine/error.h"

namespace rtune::io {

namespace {

constexpr size_t kAlign = 64;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

}  // namespace

ByteArena::ByteArena(size_t chunk_bytes) : chunk_bytes_(round_up(std::max<size_t>(chunk_bytes, 1), 4096)) {}

ByteArena::~ByteArena() { clear(); }

uint8_t* ByteArena::allocate(size_t bytes) {
  bytes = round_up(std::max<size_t>(bytes, 1), kAlign);
  std::unique_lock lock(mu_);
  void* fresh = nullptr;
  size_t fresh_size = 0;
  if (chunks_.empty() || chunks_.back().size - chunks_.back().used < bytes) {
    fresh_size = std::max(chunk_bytes_, round_up(bytes, 4096));
    fresh = mmap(nullptr, fresh_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    RTUNE_CHECK(fresh != MAP_FAILED, "decoded-image cache: out of memory mapping {} MiB (lower --cache-mib)",
                fresh_size >> 20);
    // A partly used last chunk keeps its tail unused: requests come in image sizes, so the waste is
    // at most one image per chunk.
    chunks_.push_back({static_cast<uint8_t*>(fresh), fresh_size, 0});
  }
  Chunk& c = chunks_.back();
  uint8_t* out = c.base + c.used;
  c.used += bytes;
  lock.unlock();
  // Faults the new chunk in with one call, outside the lock so that other threads go on allocating:
  // the kernel still zeroes every page, but without a page fault each (fill epoch on the 2-core VM:
  // 1,143-1,174 against 767-1,161 img/s). Only a hint: kernels before 5.14 say EINVAL, and the pages
  // then fault in on first touch as before.
  if (fresh) madvise(fresh, fresh_size, MADV_POPULATE_WRITE);
  return out;
}

void ByteArena::clear() {
  std::lock_guard lock(mu_);
  for (const Chunk& c : chunks_) munmap(c.base, c.size);
  chunks_.clear();
}

size_t ByteArena::mapped_bytes() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const Chunk& c : chunks_) n += c.size;
  return n;
}

}  // namespace rtune::io
