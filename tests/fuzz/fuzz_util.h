// Shared by the libFuzzer harnesses of tests/fuzz: the input as bytes, reading every byte a reader
// hands back (so that ASan sees a view that points outside its buffer), and the rule every harness
// enforces: a reader may reject an input only with rtune::Error. Any other exception escapes
// LLVMFuzzerTestOneInput, terminates the process, and libFuzzer reports it as a crash.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "engine/error.h"

namespace rtune::fuzz {

inline std::span<const std::byte> as_bytes(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const std::byte*>(data), size};
}

// Sums every byte; the result is kept so the compiler cannot drop the reads.
inline unsigned touch(std::span<const std::byte> bytes) {
  unsigned sum = 0;
  for (std::byte b : bytes) sum += unsigned(b);
  return sum;
}
inline volatile unsigned g_sink = 0;

// A property the harness checks beyond "no crash": when it fails, libFuzzer saves the input.
inline void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz: property violated: %s\n", what);
  std::abort();
}

// Runs `read`; rtune::Error is an accepted rejection, anything else is a finding.
template <class F>
void expect_only_rtune_errors(F&& read) {
  try {
    read();
  } catch (const Error&) {
  }
}

}  // namespace rtune::fuzz
