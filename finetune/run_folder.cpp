// RunFolder (see run_folder.h): create, lock, clean up; the pending best model's promotion.
#include "finetune/run_folder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <string_view>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "engine/error.h"

namespace rtune::finetune {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPendingPrefix = "best.pending-epoch-", kPendingSuffix = ".safetensors";

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// The epoch of a pending best model's file name, or -1 for another name.
int64_t pending_epoch(std::string_view name) {
  if (!name.starts_with(kPendingPrefix) || !name.ends_with(kPendingSuffix)) return -1;
  std::string_view n = name.substr(kPendingPrefix.size(), name.size() - kPendingPrefix.size() - kPendingSuffix.size());
  if (!all_digits(n) || n.size() > 12) return -1;
  return std::stoll(std::string(n));
}

// The files a run writes (the pending best models too), whose interrupted writes leave temp files.
bool is_run_file(std::string_view name) {
  return std::ranges::find(run_file::all, name) != run_file::all.end() || pending_epoch(name) >= 0;
}

void sync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) ::fsync(fd), ::close(fd);
}

}  // namespace

bool is_run_temp_file(const std::string& filename) {
  std::string_view n = filename;
  if (size_t at = n.rfind(".tmp-"); at != std::string_view::npos && all_digits(n.substr(at + 5)))
    return is_run_file(n.substr(0, at));  // write_file_atomic: "<file>.tmp-<pid>"
  if (n.size() > 11 && n[0] == '.' && n.substr(n.size() - 10, 4) == ".tmp")
    return is_run_file(n.substr(1, n.size() - 11));  // write_safetensors: ".<file>.tmpXXXXXX"
  return false;
}

RunFolder::RunFolder(const fs::path& dir, const std::string& flag) : dir_(dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("{} {}: cannot create the run folder: {}", flag, dir.string(), ec.message());
  if (!fs::is_directory(dir, ec)) fail("{} {}: not a folder", flag, dir.string());
  const fs::path lock = dir / ".rtune.lock";
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) fail("{} {}: cannot write in the run folder: {}", flag, dir.string(), std::strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    ::close(lock_fd_);
    lock_fd_ = -1;
    if (e == EWOULDBLOCK) fail("{} {}: another rtune train is running in this folder", flag, dir.string());
    fail("{} {}: cannot lock the run folder: {}", flag, dir.string(), std::strerror(e));
  }
  // Nothing else writes here now: a temp file is what a killed write left.
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (is_run_temp_file(it->path().filename().string()) && ::unlink(it->path().c_str()) == 0) ++removed_;
  if (ec) fail("{} {}: cannot list the run folder: {}", flag, dir.string(), ec.message());
}

RunFolder::~RunFolder() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

fs::path RunFolder::pending_best(int64_t epoch) const {
  return dir_ / fmt::format("{}{}{}", kPendingPrefix, epoch, kPendingSuffix);
}

void RunFolder::promote_best(int64_t epoch) const {
  const fs::path from = pending_best(epoch), to = dir_ / run_file::best_model;
  if (::rename(from.c_str(), to.c_str()) != 0)
    fail("run folder {}: renaming {} to {} failed: {}", dir_.string(), from.filename().string(), to.filename().string(),
         std::strerror(errno));
  sync_dir(dir_);
}

bool RunFolder::settle_pending_best(int64_t best_epoch) const {
  bool promoted = false;
  std::error_code ec;
  std::vector<std::pair<int64_t, fs::path>> pending;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec))
    if (int64_t e = pending_epoch(it->path().filename().string()); e >= 0) pending.emplace_back(e, it->path());
  if (ec) fail("run folder {}: cannot list it: {}", dir_.string(), ec.message());
  for (const auto& [epoch, path] : pending) {
    if (best_epoch > 0 && epoch == best_epoch) {
      promote_best(epoch);
      promoted = true;
    } else if (::unlink(path.c_str()) != 0) {
      fail("run folder {}: cannot remove {}: {}", dir_.string(), path.filename().string(), std::strerror(errno));
    }
  }
  return promoted;
}

bool kill_point_armed(const char* point, int64_t epoch) {
  static const std::string spec = [] {
    const char* e = std::getenv("RTUNE_TEST_KILL_AT");
    return std::string(e ? e : "");
  }();
  return !spec.empty() && (spec == fmt::format("{}@{}", point, epoch) || spec == fmt::format("stop:{}@{}", point, epoch));
}

void kill_point(const char* point, int64_t epoch) {
  if (!kill_point_armed(point, epoch)) return;
  const char* spec = std::getenv("RTUNE_TEST_KILL_AT");
  ::kill(::getpid(), std::string_view(spec).starts_with("stop:") ? SIGSTOP : SIGKILL);
}

}  // namespace rtune::finetune
