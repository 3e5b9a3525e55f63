// mmap-backed file bytes for the weight readers (see stored_mapping.h).
#include "io/formats/stored_mapping.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

#include "engine/error.h"

namespace rtune::io {

StoredMapping StoredMapping::map_file(const std::filesystem::path& path, std::string_view what) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("{} {}: cannot open: {}", what, path.string(), std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    fail("{} {}: cannot stat: {}", what, path.string(), std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("{} {}: not a regular file", what, path.string());
  }
  StoredMapping m;
  if (st.st_size == 0) {  // mmap refuses length 0; an empty buffer says the same thing
    ::close(fd);
    return m;
  }
  void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  int e = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (p == MAP_FAILED) fail("{} {}: cannot mmap: {}", what, path.string(), std::strerror(e));
  m.data_ = static_cast<const std::byte*>(p);
  m.size_ = static_cast<size_t>(st.st_size);
  m.mapped_ = true;
  return m;
}

StoredMapping StoredMapping::from_bytes(std::vector<std::byte> bytes) {
  StoredMapping m;
  m.owned_ = std::move(bytes);
  m.data_ = m.owned_.data();
  m.size_ = m.owned_.size();
  return m;
}

StoredMapping::StoredMapping(StoredMapping&& o) noexcept { *this = std::move(o); }

StoredMapping& StoredMapping::operator=(StoredMapping&& o) noexcept {
  if (this == &o) return *this;
  release();
  mapped_ = std::exchange(o.mapped_, false);
  size_ = std::exchange(o.size_, 0);
  if (mapped_) {
    data_ = std::exchange(o.data_, nullptr);
  } else {
    owned_ = std::move(o.owned_);  // a vector move keeps its buffer, so data_ stays valid
    data_ = owned_.data();
    o.data_ = nullptr;
  }
  return *this;
}

StoredMapping::~StoredMapping() { release(); }

void StoredMapping::release() noexcept {
  if (mapped_ && data_) ::munmap(const_cast<std::byte*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
  mapped_ = false;
  owned_.clear();
}

}  // namespace rtune::io
