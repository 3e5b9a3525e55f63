// What the end-to-end tests share: run the built `rtune` binary (RTUNE_BIN) with arguments, capturing
// its exit code, stdout and stderr; read files and JSON-lines logs it wrote.
#pragma once
#include <sys/wait.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

namespace rtune::test {

struct Run {
  int rc = -1;  // the exit code; -1 when killed by a signal (an abort is never a refusal)
  std::string out, err;
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// `args` go through the shell; stdout and stderr land in files under `tmp`. `prefix` goes before the
// binary: environment assignments (VAR=value) or a wrapper such as `timeout -s KILL 0.5`.
inline Run run_rtune(const std::filesystem::path& tmp, const std::string& args, const std::string& prefix = "") {
  const std::filesystem::path o = tmp / "stdout.txt", e = tmp / "stderr.txt";
  const std::string cmd = prefix + (prefix.empty() ? "" : " ") + std::string(RTUNE_BIN) + " " + args + " >" +
                          o.string() + " 2>" + e.string();
  int status = std::system(cmd.c_str());
  Run r;
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(o), r.err = slurp(e);
  return r;
}

inline std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& p) {
  std::vector<nlohmann::json> v;
  std::ifstream f(p);
  for (std::string line; std::getline(f, line);)
    if (!line.empty()) v.push_back(nlohmann::json::parse(line));
  return v;
}

// A refusal: exit code 1 and, last on stderr (after any warnings), one line "rtune: error: ..." -- never
// "internal error" (exit 3), never an abort.
inline bool is_one_line_refusal(const Run& r) {
  const size_t at = r.err.find("rtune: error: ");
  if (r.rc != 1 || at == std::string::npos) return false;
  const std::string tail = r.err.substr(at);
  return tail.find('\n') == tail.size() - 1 && r.err.find("terminate called") == std::string::npos;
}

}  // namespace rtune::test
