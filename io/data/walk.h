// Walking a folder tree as os.walk(followlinks=True) does (torchvision's ImageFolder, `rtune predict
// DIR`), minus its failure modes: a symbolic link that leads back to a folder it is inside would make
// os.walk descend into the same files again and again, and a link loop that cannot be resolved at all
// ends std::filesystem's iterators with an exception. Both are errors naming the link here.
#pragma once
#include <filesystem>
#include <functional>

namespace rtune::io {

// Calls `on_entry(path, is_dir)` for every entry under `dir` (not `dir` itself), descending into
// sub-folders and folders reached through symbolic links; a dangling link counts as a file. Order:
// directory order (callers sort). Throws rtune::Error naming the path for a folder that cannot be
// listed, a link that cannot be resolved (a loop), or a link back to an enclosing folder.
void walk_tree(const std::filesystem::path& dir,
               const std::function<void(const std::filesystem::path& path, bool is_dir)>& on_entry);

// What `path` is, following links: a folder (true), anything else (false). Throws rtune::Error
// naming it for a loop of links or another reason it cannot be resolved (a missing path is false).
bool is_folder(const std::filesystem::path& path);

}  // namespace rtune::io
