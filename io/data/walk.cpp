// walk_tree / is_folder (see walk.h): stat(2) on every entry, with the (device, inode) of each folder
// on the way down kept so that a link back to one of them is recognised.
#include "io/data/walk.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>
#include <vector>

#include "engine/error.h"

namespace fs = std::filesystem;

namespace rtune::io {

namespace {

using FolderId = std::pair<dev_t, ino_t>;

// stat() following links; false for a missing target (a dangling link: a file for os.walk).
bool stat_following(const fs::path& p, struct stat& st) {
  if (::stat(p.c_str(), &st) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  if (errno == ELOOP) fail("{}: a loop of symbolic links (it never reaches a file or folder); remove or fix the link", p.string());
  fail("{}: cannot be read: {}", p.string(), std::strerror(errno));
}

void walk(const fs::path& dir, std::vector<std::pair<FolderId, fs::path>>& above,
          const std::function<void(const fs::path&, bool)>& on_entry) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) fail("{}: cannot list this folder: {}", dir.string(), ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) fail("{}: cannot list this folder: {}", dir.string(), ec.message());
    const fs::path p = it->path();
    struct stat st {};
    const bool is_dir = stat_following(p, st) && S_ISDIR(st.st_mode);
    if (is_dir) {
      const FolderId id{st.st_dev, st.st_ino};
      for (const auto& [a, apath] : above)
        if (a == id)
          fail("{}: a symbolic link back to {}, a folder it is inside (an endless loop); remove the link", p.string(),
               apath.string());
    }
    on_entry(p, is_dir);
    if (is_dir) {
      above.push_back({{st.st_dev, st.st_ino}, p});
      walk(p, above, on_entry);
      above.pop_back();
    }
  }
  if (ec) fail("{}: cannot list this folder: {}", dir.string(), ec.message());
}

}  // namespace

void walk_tree(const fs::path& dir, const std::function<void(const fs::path&, bool)>& on_entry) {
  struct stat st {};
  if (!stat_following(dir, st) || !S_ISDIR(st.st_mode)) fail("{}: not a folder", dir.string());
  std::vector<std::pair<FolderId, fs::path>> above{{{st.st_dev, st.st_ino}, dir}};
  walk(dir, above, on_entry);
}

bool is_folder(const fs::path& path) {
  struct stat st {};
  return stat_following(path, st) && S_ISDIR(st.st_mode);
}

}  // namespace rtune::io
