// Overflow-checked integer arithmetic for sizes and offsets read from untrusted files.
#pragma once
#include <cstdint>
#include <span>

namespace rtune::io {

// a * b and a + b, false on overflow.
inline bool mul_ok(int64_t a, int64_t b, int64_t& out) { return !__builtin_mul_overflow(a, b, &out); }
inline bool add_ok(int64_t a, int64_t b, int64_t& out) { return !__builtin_add_overflow(a, b, &out); }
inline bool mul_ok(uint64_t a, uint64_t b, uint64_t& out) { return !__builtin_mul_overflow(a, b, &out); }
inline bool add_ok(uint64_t a, uint64_t b, uint64_t& out) { return !__builtin_add_overflow(a, b, &out); }

// Product of non-negative dims; false when a dim is negative or the product overflows int64.
inline bool shape_numel(std::span<const int64_t> shape, int64_t& numel) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (d < 0) return false;
  for (int64_t d : shape)
    if (d == 0) { numel = 0; return true; }  // (0, 3e9, 3e9) is empty, not an overflow
  for (int64_t d : shape)
    if (!mul_ok(n, d, n)) return false;
  numel = n;
  return true;
}

}  // namespace rtune::io
