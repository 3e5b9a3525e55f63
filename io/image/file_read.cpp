// read_file, read_file_start and advise_will_read (see file_read.h): plain POSIX calls, open + fstat + read + close,
// where an ifstream took two stats, two seeks and a buffer allocation per file.
#include "io/image/file_read.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "engine/error.h"

namespace rtune::io {

namespace {

// Closes the descriptor on every way out of read_file.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

size_t read_file_start(const std::filesystem::path& path, size_t max_bytes, std::vector<std::byte>& bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below); reads of a regular
  // file ignore the flag.
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)};
  if (f.fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) fail("decode_image: {}: no such file", path.string());
    fail("decode_image: {}: cannot open for reading ({})", path.string(), std::strerror(errno));
  }
  struct stat st{};
  if (::fstat(f.fd, &st) != 0) fail("decode_image: {}: cannot determine file size ({})", path.string(), std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail("decode_image: {}: is a directory, not an image", path.string());
  // A FIFO or device could block or never end.
  if (!S_ISREG(st.st_mode)) fail("decode_image: {}: not a regular file", path.string());
  const size_t size = static_cast<size_t>(st.st_size);
  // A part of the file: no read-ahead of the rest, which may never be wanted.
  if (max_bytes < size) ::posix_fadvise(f.fd, 0, 0, POSIX_FADV_RANDOM);
  bytes.resize(std::min(size, max_bytes));
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t n = ::read(f.fd, bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("decode_image: {}: read error ({})", path.string(), std::strerror(errno));
    if (n == 0) break;  // shrunk since fstat: what is there is what the decoder gets
    got += size_t(n);
  }
  bytes.resize(got);
  return size;
}

void read_file(const std::filesystem::path& path, std::vector<std::byte>& bytes) {
  read_file_start(path, std::numeric_limits<size_t>::max(), bytes);
}

void advise_will_read(const std::filesystem::path& path) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)};  // O_NONBLOCK: a FIFO must not block here
  if (f.fd >= 0) ::posix_fadvise(f.fd, 0, 0, POSIX_FADV_WILLNEED);
}

}  // namespace rtune::io
