#include "kernels/op_counts.h"
#include <atomic>
#include <map>
#include <mutex>
#include <string>

namespace rtune::kernels {
namespace {
std::mutex g_mu;
std::map<std::string, int64_t, std::less<>>& counts() {
  static std::map<std::string, int64_t, std::less<>> m;
  return m;
}
}  // namespace

void count_op(std::string_view op) {
  std::lock_guard lock(g_mu);
  auto it = counts().find(op);
  if (it == counts().end()) counts().emplace(std::string(op), 1);
  else ++it->second;
}
int64_t op_count(std::string_view op) {
  std::lock_guard lock(g_mu);
  auto it = counts().find(op);
  return it == counts().end() ? 0 : it->second;
}
void reset_op_counts() {
  std::lock_guard lock(g_mu);
  counts().clear();
}
}  // namespace rtune::kernels
