// Turns an allocation that does not fit into an error naming the flag (and value) that asked for the
// size, and what to lower: "--width 1000000000: out of memory ...; lower --width". Without it the
// message could only say that memory ran out.
#pragma once
#include <new>
#include <string>
#include <utility>
#include "engine/error.h"

namespace rtune::finetune {

// Runs `fn()`; std::bad_alloc or rtune::OutOfMemory inside it becomes rtune::Error
// "<what>: out of memory (<detail>); <advice>".
template <class F>
decltype(auto) with_size_advice(const std::string& what, const std::string& advice, F&& fn) {
  try {
    return std::forward<F>(fn)();
  } catch (const OutOfMemory& e) {
    fail("{}: out of memory ({}); {}", what, e.what(), advice);
  } catch (const std::bad_alloc&) {
    fail("{}: out of memory; {}", what, advice);
  }
}

}  // namespace rtune::finetune
