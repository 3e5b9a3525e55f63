// safetensors writer: the layout of huggingface/safetensors' `prepare` + `serialize` (src/tensor.rs):
// tensors sorted by dtype in descending enum order, then by name; compact JSON with __metadata__ first
// and fields dtype, shape, data_offsets; header padded with spaces to a multiple of 8. Written to a temp
// file in the target folder, fsync'd and renamed, so readers never see a half-written file.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include "io/formats/safetensors.h"
#include "io/formats/stored_checked.h"

namespace rtune::io {

namespace {

// Position of each dtype in safetensors' `enum Dtype` (only the relative order matters).
int library_rank(DType d) {
  switch (d) {
    case DType::u8: return 4;
    case DType::f16: return 11;
    case DType::bf16: return 12;
    case DType::f32: return 15;
    case DType::f64: return 17;
    case DType::i64: return 18;
  }
  return 0;
}

std::string quoted(const std::string& s) { return nlohmann::json(s).dump(); }

}  // namespace

std::string_view safetensors_dtype_string(DType d) {
  switch (d) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::bf16: return "BF16";
    case DType::f16: return "F16";
    case DType::i64: return "I64";
    case DType::u8: return "U8";
  }
  return "?";
}

std::vector<std::byte> serialize_safetensors(std::span<const SafetensorsEntry> tensors,
                                             const std::map<std::string, std::string>& metadata) {
  std::set<std::string_view> names;
  for (const SafetensorsEntry& t : tensors) {
    if (t.name == "__metadata__") fail("write_safetensors: '__metadata__' is reserved, not a tensor name");
    if (!names.insert(t.name).second) fail("write_safetensors: duplicate tensor name '{}'", t.name);
    int64_t numel = 0, nbytes = 0;
    if (!shape_numel(t.shape, numel) || !mul_ok(numel, int64_t(dtype_size(t.dtype)), nbytes))
      fail("write_safetensors: tensor '{}' has a negative or overflowing shape", t.name);
    if (uint64_t(nbytes) != t.bytes.size())
      fail("write_safetensors: tensor '{}' needs {} bytes for its shape and dtype, got {}", t.name, nbytes,
           t.bytes.size());
  }
  std::vector<const SafetensorsEntry*> order;
  for (const SafetensorsEntry& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const SafetensorsEntry* a, const SafetensorsEntry* b) {
    int ra = library_rank(a->dtype), rb = library_rank(b->dtype);
    return ra != rb ? ra > rb : a->name < b->name;
  });

  std::string h = "{";
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      h += (first ? "" : ",") + quoted(k) + ":" + quoted(v);
      first = false;
    }
    h += "}";
  }
  uint64_t offset = 0;
  for (const SafetensorsEntry* t : order) {
    if (h.size() > 1) h += ",";
    h += quoted(t->name) + ":{\"dtype\":\"" + std::string(safetensors_dtype_string(t->dtype)) + "\",\"shape\":[";
    for (size_t i = 0; i < t->shape.size(); ++i) h += (i ? "," : "") + std::to_string(t->shape[i]);
    h += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + t->bytes.size()) + "]}";
    offset += t->bytes.size();
  }
  h += "}";
  h.append((8 - h.size() % 8) % 8, ' ');

  std::vector<std::byte> out(8 + h.size() + offset);
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[size_t(i)] = std::byte((n >> (8 * i)) & 0xff);
  std::memcpy(out.data() + 8, h.data(), h.size());
  std::byte* p = out.data() + 8 + h.size();
  for (const SafetensorsEntry* t : order) {
    if (!t->bytes.empty()) std::memcpy(p, t->bytes.data(), t->bytes.size());
    p += t->bytes.size();
  }
  return out;
}

void write_safetensors(const std::filesystem::path& path, std::span<const SafetensorsEntry> tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::vector<std::byte> bytes = serialize_safetensors(tensors, metadata);
  std::filesystem::path dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  std::string tmpl = (dir / ("." + path.filename().string() + ".tmpXXXXXX")).string();
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) fail("write_safetensors {}: cannot create a temp file in {}: {}", path.string(), dir.string(),
                   std::strerror(errno));
  auto abandon = [&](const char* what) {
    int e = errno;
    ::close(fd);
    ::unlink(tmpl.c_str());
    fail("write_safetensors {}: {} failed: {}", path.string(), what, std::strerror(e));
  };
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) abandon("write");
    done += size_t(w);
  }
  if (::fchmod(fd, 0644) != 0) abandon("chmod");  // mkstemp makes 0600; weights are ordinary files
  if (::fsync(fd) != 0) abandon("fsync");
  if (::close(fd) != 0) {
    int e = errno;
    ::unlink(tmpl.c_str());
    fail("write_safetensors {}: close failed: {}", path.string(), std::strerror(e));
  }
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmpl.c_str());
    fail("write_safetensors {}: rename failed: {}", path.string(), std::strerror(e));
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);  // make the rename itself durable
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace rtune::io
