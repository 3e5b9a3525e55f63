// Names read from files (tensor keys, zip entries, metadata, class names) as messages print them.
// A name is data: it may hold terminal escape sequences or be megabytes long, and a file may hold
// tens of thousands of them, so messages show them escaped, cut short, and a bounded number at a time.
#pragma once
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace rtune {

// Longest name printed whole; longer ones are cut and say how long they were.
constexpr size_t kMaxPrintedName = 200;
// Names a list prints before "… and N more".
constexpr size_t kMaxPrintedNames = 10;

// `name` with control characters, invalid UTF-8, quotes and backslashes escaped (fmt's debug format:
// ESC becomes \x1b, a tab \t), without fmt's surrounding quotes: messages quote names themselves.
inline std::string printable(std::string_view name) {
  std::string_view shown = name.substr(0, kMaxPrintedName);
  std::string q = fmt::format("{:?}", shown);
  q = q.substr(1, q.size() - 2);
  if (shown.size() < name.size()) q += fmt::format("… ({} bytes)", name.size());
  return q;
}

// The first `shown` names, printable, joined by ", ", then "… and N more" when there are more.
inline std::string printable_list(std::span<const std::string> names, size_t shown = kMaxPrintedNames) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < shown; ++i) out += (i ? ", " : "") + printable(names[i]);
  if (names.size() > shown) out += fmt::format(", … and {} more", names.size() - shown);
  return out;
}

}  // namespace rtune
