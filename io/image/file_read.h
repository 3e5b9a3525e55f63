// Reading image files whole, and telling the OS which files will be read soon: a loader worker that
// blocks on a disk read leaves its core idle, so the loader names the files a few samples ahead and
// the kernel reads them in the background.
#pragma once
#include <cstddef>
#include <filesystem>
#include <vector>

namespace rtune::io {

// Reads a whole file into `out` (resized to the file's size, capacity reused). Throws rtune::Error
// naming the file and the reason: no such file, a directory, not a regular file, cannot open, read
// error.
void read_file(const std::filesystem::path& path, std::vector<std::byte>& out);

// Reads at most the first `max_bytes` of a file into `out` (without read-ahead of the rest) and
// returns the file's size. Throws like read_file.
size_t read_file_start(const std::filesystem::path& path, size_t max_bytes, std::vector<std::byte>& out);

// Asks the kernel to start reading `path` into the page cache (posix_fadvise WILLNEED) and returns
// without waiting. Only a hint: a file that cannot be opened is left for read_file to report.
void advise_will_read(const std::filesystem::path& path);

}  // namespace rtune::io
