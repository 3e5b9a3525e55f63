// engine/printable.h: names read from files are printed escaped, cut short and a bounded number at a
// time, so a hostile file cannot drive the terminal or make a 249 KB error message (issue 21).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "engine/printable.h"

using namespace rtune;

TEST_CASE("printable: control characters, invalid UTF-8, quotes and backslashes are escaped") {
  CHECK(printable("layer1.0.conv1.weight") == "layer1.0.conv1.weight");
  CHECK(printable("\x1b[2J\x1b]0;pwned\x07") == "\\x1b[2J\\x1b]0;pwned\\x07");
  CHECK(printable("tab\there\nnew\rline") == "tab\\there\\nnew\\rline");
  CHECK(printable("\x7f") == "\\x7f");
  CHECK(printable("\xc2\x9b" "31m") == "\\x9b31m");  // U+009B, the one-character CSI
  CHECK(printable("bad \xff\xfe utf8") == "bad \\xff\\xfe utf8");
  CHECK(printable("a\\x1b \"q\"") == "a\\\\x1b \\\"q\\\"");  // a literal "\x1b" stays distinguishable
  CHECK(printable("fire lily \xE2\x9C\xBF, café, 中文") == "fire lily \xE2\x9C\xBF, café, 中文");  // printable UTF-8 kept
  CHECK(printable("") == "");
}

TEST_CASE("printable: a long name is cut and says its length") {
  const std::string name(100'000, 'k');
  const std::string shown = printable(name);
  CHECK(shown == std::string(kMaxPrintedName, 'k') + "… (100000 bytes)");
  CHECK(printable(std::string(kMaxPrintedName, 'k')) == std::string(kMaxPrintedName, 'k'));
}

TEST_CASE("printable_list: the first names, escaped, then how many more") {
  std::vector<std::string> names;
  CHECK(printable_list(names) == "");
  for (int i = 0; i < 20'000; ++i) names.push_back("extra." + std::to_string(i));
  names[1] = "evil\x1b[31m";
  const std::string shown = printable_list(names);
  CHECK(shown == "extra.0, evil\\x1b[31m, extra.2, extra.3, extra.4, extra.5, extra.6, extra.7, extra.8, extra.9, "
                 "… and 19990 more");
  names.resize(kMaxPrintedNames);
  CHECK(printable_list(names).find("more") == std::string::npos);  // exactly ten: all shown
  CHECK(printable_list(names, 2) == "extra.0, evil\\x1b[31m, … and 8 more");
}
