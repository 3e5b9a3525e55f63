#include "io/formats/checkpoint.h"
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>
#include "engine/printable.h"
#include "io/formats/safetensors.h"

namespace rtune::io {

namespace fs = std::filesystem;

const Tensor* Checkpoint::find(const std::string& name) const {
  for (auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

namespace {
[[noreturn]] void sys_fail(const fs::path& p, const char* what) {
  fail("checkpoint {}: {} failed: {}", p.string(), what, std::strerror(errno));
}
struct Fd {
  int fd = -1;
  ~Fd() { if (fd >= 0) ::close(fd); }
};
}  // namespace

void write_file_atomic(const fs::path& path, std::span<const std::byte> bytes, const AtomicWriteHooks& hooks) {
  fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  fs::path tmp = dir / fmt::format("{}.tmp-{}", path.filename().string(), ::getpid());
  bool done = false;
  struct Cleanup {  // a failed write must not leave its partial temp file behind
    const fs::path& tmp;
    bool& done;
    ~Cleanup() { if (!done) ::unlink(tmp.c_str()); }
  } cleanup{tmp, done};
  {
    Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (f.fd < 0) sys_fail(tmp, "open");
    size_t off = 0;
    const size_t chunk = hooks.chunk_bytes ? hooks.chunk_bytes : bytes.size();
    while (off < bytes.size()) {
      if (hooks.before_chunk) hooks.before_chunk(off, bytes.size());
      size_t n = std::min(chunk, bytes.size() - off);
      ssize_t w = ::write(f.fd, bytes.data() + off, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        sys_fail(tmp, "write");
      }
      off += size_t(w);
    }
    if (::fsync(f.fd) != 0) sys_fail(tmp, "fsync");
    int fd = f.fd;
    f.fd = -1;
    if (::close(fd) != 0) sys_fail(tmp, "close");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) sys_fail(path, "rename");
  done = true;
  // Make the rename itself durable.
  Fd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd >= 0) ::fsync(d.fd);
}

void save_checkpoint(const fs::path& path, const Checkpoint& ck, const AtomicWriteHooks& hooks) {
  std::vector<Tensor> host;  // keeps contiguous CPU copies alive while their bytes are referenced
  std::vector<SafetensorsEntry> entries;
  host.reserve(ck.tensors.size());
  for (auto& [name, t] : ck.tensors) {
    host.push_back(t.detach().cpu().contiguous());
    const Tensor& h = host.back();
    entries.push_back({name, h.dtype(), h.shape(),
                       {static_cast<const std::byte*>(h.raw_data()), size_t(h.numel()) * dtype_size(h.dtype())}});
  }
  std::map<std::string, std::string> meta{{"format", kCheckpointFormat}, {"rtune.state", ck.state.dump()}};
  std::vector<std::byte> bytes = serialize_safetensors(entries, meta);
  write_file_atomic(path, bytes, hooks);
}

namespace {
Checkpoint checkpoint_from(const SafetensorsFile& f, const std::string& label) {
  auto it = f.metadata().find("format");
  if (it == f.metadata().end() || it->second != kCheckpointFormat)
    fail("checkpoint {}: not an rtune training checkpoint (metadata format is '{}')", label,
         it == f.metadata().end() ? "" : printable(it->second));
  auto st = f.metadata().find("rtune.state");
  if (st == f.metadata().end()) fail("checkpoint {}: no 'rtune.state' metadata", label);
  Checkpoint ck;
  try {
    ck.state = nlohmann::json::parse(st->second);
  } catch (const nlohmann::json::exception& e) {
    fail("checkpoint {}: state JSON is corrupt: {}", label, e.what());
  }
  for (const SafetensorsView& v : f.tensors())
    ck.tensors.emplace_back(v.name, from_bytes(v.bytes.data(), v.bytes.size(), v.shape, v.dtype));
  return ck;
}
}  // namespace

Checkpoint load_checkpoint(const fs::path& path) { return checkpoint_from(SafetensorsFile::open(path), path.string()); }

Checkpoint load_checkpoint_bytes(std::vector<std::byte> bytes, const std::string& label) {
  return checkpoint_from(SafetensorsFile::from_bytes(std::move(bytes), label), label);
}

}  // namespace rtune::io
