// The `rtune …` commands of a Markdown file's ```sh blocks, as a shell would see them: comments
// (from a '#' that starts a word) dropped, backslash-continued lines joined, `&&` chains split, and a
// command kept when its program is `rtune` or a path ending in /rtune (e.g. ./build/rtune).
#pragma once
#include <sstream>
#include <string>
#include <vector>

namespace rtune::test {

struct ReadmeCommand {
  std::string args;  // everything after the program, single-spaced
  int line = 0;      // the README line the command starts on (1-based)
};

inline std::string strip_shell_comment(const std::string& line) {
  for (size_t i = 0; i < line.size(); ++i)
    if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) return line.substr(0, i);
  return line;
}

inline std::vector<ReadmeCommand> readme_rtune_commands(const std::string& markdown) {
  std::vector<ReadmeCommand> out;
  std::istringstream in(markdown);
  bool in_sh = false;
  std::string joined;
  int start = 0, lineno = 0;
  auto finish = [&] {
    std::istringstream chain(joined);
    std::string word, args;
    bool first = true, keep = false;
    while (chain >> word) {
      if (word == "&&") {
        if (keep) out.push_back({args, start});
        first = true, keep = false, args.clear();
      } else if (first) {
        first = false;
        keep = word == "rtune" || (word.size() > 6 && word.ends_with("/rtune"));
      } else {
        args += (args.empty() ? "" : " ") + word;
      }
    }
    if (keep) out.push_back({args, start});
    joined.clear();
  };
  for (std::string line; std::getline(in, line);) {
    ++lineno;
    if (line.starts_with("```")) {
      in_sh = !in_sh && line.substr(3) == "sh";
      continue;
    }
    if (!in_sh) continue;
    std::string code = strip_shell_comment(line);
    while (!code.empty() && (code.back() == ' ' || code.back() == '\t')) code.pop_back();
    if (joined.empty()) start = lineno;
    const bool continued = !code.empty() && code.back() == '\\';
    if (continued) code.pop_back();
    joined += code + " ";
    if (!continued) finish();
  }
  return out;
}

}  // namespace rtune::test
