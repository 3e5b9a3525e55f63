// Call log and checking hooks of the cuDNN/cuBLAS stand-ins (simulated CUDA device).
// Every stand-in compute call (convolution, batch norm, pooling, GEMM, ...) appends one LibCall, so
// backend tests can assert which library calls a step issued (e.g. "no cudnnConvolutionBackwardFilter").
// The stand-ins also hand every buffer they read or write, with its exact byte extent, to the device
// pointer validator (the simulated runtime installs one that checks the range lies in a live device
// allocation), and report "lint" findings (misuse the real library accepts silently, see
// docs/cuda-libs-semantics.md §0/§11) through the lint handler, never as a different library status.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace rtune::sim {

struct LibCall {
  std::string function;  // e.g. "cudnnConvolutionForward"
  std::string detail;    // shapes, strides, dtypes, algo, alpha/beta
};

// Logging is off by default; enabling does not clear earlier entries.
void call_log_enable(bool on);
bool call_log_enabled();
// Returns the entries logged so far, in call order, and empties the log.
std::vector<LibCall> call_log_take();
void call_log_clear();

// validator(ptr, bytes, what): called before a stand-in touches [ptr, ptr+bytes). It reports a bad
// range by throwing (or aborting); the stand-ins do not catch. Pass an empty function to remove it.
using PointerValidator = std::function<void(const void* ptr, size_t bytes, const char* what)>;
void set_device_pointer_validator(PointerValidator validator);

// handler(message): called for lint findings. The default prints the message and aborts; tests
// install one that throws. Returns the previous handler.
using LintHandler = std::function<void(const std::string& message)>;
LintHandler set_lint_handler(LintHandler handler);

namespace detail {
void log_call(const char* function, std::string detail_text);
void check_device_range(const void* ptr, size_t bytes, const char* what);
void lint(const std::string& message);
}  // namespace detail

}  // namespace rtune::sim
