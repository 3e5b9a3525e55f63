// The one exception type rtune throws for user-facing errors (bad input, misuse, missing device).
#pragma once
#include <stdexcept>
#include <string>
#include <fmt/format.h>

namespace rtune {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class... A>
[[noreturn]] void fail(fmt::format_string<A...> f, A&&... a) {
  throw Error(fmt::format(f, std::forward<A>(a)...));
}

#define RTUNE_CHECK(cond, ...) \
  do { if (!(cond)) ::rtune::fail(__VA_ARGS__); } while (0)

}  // namespace rtune
