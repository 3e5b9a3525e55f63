// The one exception type rtune throws for user-facing errors (bad input, misuse, missing device).
#pragma once
#include <stdexcept>
#include <string>
#include <fmt/format.h>

namespace rtune {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// An allocation that did not fit (host memory): callers that know which flag asked for the size turn
// it into advice naming that flag.
struct OutOfMemory : Error {
  using Error::Error;
};

// A setting the user chose that is out of range or contradicts another (a flag's value, a run's
// config built in code): the command line reports it as a usage error, before any work.
struct InvalidArgument : Error {
  using Error::Error;
};

// A device allocation that failed even after the allocator released its cache. Thrown by the CUDA
// backend; the training loop adds which flag to lower (it knows the batch size, the backend does not).
class DeviceOutOfMemory : public Error {
 public:
  DeviceOutOfMemory(size_t requested, const std::string& message) : Error(message), requested_(requested) {}
  size_t requested() const noexcept { return requested_; }
 private:
  size_t requested_;
};

#ifndef __CUDACC__
template <class... A>
[[noreturn]] void fail(fmt::format_string<A...> f, A&&... a) {
  throw Error(fmt::format(f, std::forward<A>(a)...));
}
template <class... A>
[[noreturn]] void invalid_argument(fmt::format_string<A...> f, A&&... a) {
  throw InvalidArgument(fmt::format(f, std::forward<A>(a)...));
}
#else
// nvcc cannot evaluate fmt's compile-time format checks; CUDA translation units format at run time.
template <class... A>
[[noreturn]] void fail(std::string_view f, A&&... a) {
  throw Error(fmt::vformat(f, fmt::make_format_args(a...)));
}
#endif

#define RTUNE_CHECK(cond, ...) \
  do { if (!(cond)) ::rtune::fail(__VA_ARGS__); } while (0)

}  // namespace rtune
