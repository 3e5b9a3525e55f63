// Call log, device pointer validator hook and lint channel of the cuDNN/cuBLAS stand-ins.
#include "kernels/cuda/sim/call_log.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <utility>

namespace rtune::sim {
namespace {

struct State {
  std::mutex mu;
  bool enabled = false;
  std::vector<LibCall> calls;
  PointerValidator validator;
  LintHandler lint;
};

State& state() {
  static State s;
  return s;
}

}  // namespace

void call_log_enable(bool on) {
  std::lock_guard lock(state().mu);
  state().enabled = on;
}

bool call_log_enabled() {
  std::lock_guard lock(state().mu);
  return state().enabled;
}

std::vector<LibCall> call_log_take() {
  std::lock_guard lock(state().mu);
  return std::exchange(state().calls, {});
}

void call_log_clear() {
  std::lock_guard lock(state().mu);
  state().calls.clear();
}

void set_device_pointer_validator(PointerValidator validator) {
  std::lock_guard lock(state().mu);
  state().validator = std::move(validator);
}

LintHandler set_lint_handler(LintHandler handler) {
  std::lock_guard lock(state().mu);
  return std::exchange(state().lint, std::move(handler));
}

namespace detail {

void log_call(const char* function, std::string detail_text) {
  std::lock_guard lock(state().mu);
  if (state().enabled) state().calls.push_back({function, std::move(detail_text)});
}

void check_device_range(const void* ptr, size_t bytes, const char* what) {
  PointerValidator v;
  {
    std::lock_guard lock(state().mu);
    v = state().validator;
  }
  if (v) v(ptr, bytes, what);  // called outside the lock: it may throw
}

void lint(const std::string& message) {
  LintHandler h;
  {
    std::lock_guard lock(state().mu);
    h = state().lint;
  }
  if (h) return h(message);
  std::fprintf(stderr, "rtune cuda stand-in lint: %s\n", message.c_str());
  std::abort();
}

}  // namespace detail
}  // namespace rtune::sim
