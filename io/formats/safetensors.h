// safetensors reader and writer: rtune's native weight format.
// Matches huggingface/safetensors (src/tensor.rs): u64 LE header length N, N bytes of JSON, then the
// tensor bytes, little-endian, C order. The reader enforces the reference's checks (header size, UTF-8
// JSON object, known dtype, shape x dtype size == byte range, ranges covering the data exactly) and
// also rejects duplicate names. The writer reproduces the library's layout byte for byte: tensors
// sorted by dtype (descending enum order) then name, compact JSON, header padded with spaces to 8.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "engine/dtype.h"
#include "engine/error.h"

namespace rtune::io {

// One tensor inside an open file; `bytes` points into the file's mapping.
struct SafetensorsView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::span<const std::byte> bytes;
  int64_t numel() const;
};

// The DType an element type T stands for in copy_as<T>(); uint16_t covers bf16 and f16.
template <class T>
constexpr bool safetensors_dtype_matches(DType d) {
  if constexpr (std::is_same_v<T, float>) return d == DType::f32;
  else if constexpr (std::is_same_v<T, double>) return d == DType::f64;
  else if constexpr (std::is_same_v<T, int64_t>) return d == DType::i64;
  else if constexpr (std::is_same_v<T, uint8_t>) return d == DType::u8;
  else if constexpr (std::is_same_v<T, uint16_t>) return d == DType::bf16 || d == DType::f16;
  else static_assert(sizeof(T) == 0, "copy_as<T>: T must be float, double, int64_t, uint8_t or uint16_t");
}

// A safetensors file, mmap'd and fully validated on open. Move-only; unmaps on destruction.
class SafetensorsFile {
 public:
  // requires: a readable regular file. ensures: every view lies inside the data area, views cover it
  // exactly, names are unique. Throws rtune::Error naming the file and the problem.
  static SafetensorsFile open(const std::filesystem::path& path);
  // The same checks on bytes already in memory (tests, fuzzing); `label` names them in errors.
  static SafetensorsFile from_bytes(std::vector<std::byte> bytes, std::string label);

  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  const std::map<std::string, std::string>& metadata() const { return metadata_; }  // "__metadata__"
  const std::vector<SafetensorsView>& tensors() const { return tensors_; }          // by data offset
  const SafetensorsView* find(std::string_view name) const;                         // nullptr if absent
  const SafetensorsView& at(std::string_view name) const;  // throws naming the key and the file
  const std::string& label() const { return label_; }

  // A copy of tensor `name`'s elements; throws if its dtype is not the one T stands for.
  template <class T>
  std::vector<T> copy_as(std::string_view name) const {
    const SafetensorsView& v = at(name);
    if (!safetensors_dtype_matches<T>(v.dtype))
      fail("safetensors {}: tensor '{}' is {}, not the requested element type", label_, v.name,
           dtype_name(v.dtype));
    std::vector<T> out(v.bytes.size() / sizeof(T));
    if (!out.empty()) std::memcpy(out.data(), v.bytes.data(), v.bytes.size());
    return out;
  }

  struct Backing;  // the mapping or owned buffer the views point into

 private:
  SafetensorsFile() = default;
  static SafetensorsFile parse(std::unique_ptr<Backing> backing, std::string label);

  std::unique_ptr<Backing> backing_;
  std::string label_;
  std::map<std::string, std::string> metadata_;
  std::vector<SafetensorsView> tensors_;
  std::map<std::string, size_t, std::less<>> index_;  // name -> position in tensors_
};

// One tensor to write; `bytes` must hold exactly numel x dtype_size bytes, C order, little-endian.
struct SafetensorsEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::span<const std::byte> bytes;
};

// Writes atomically (temp file in the same folder, fsync, rename) in the safetensors library's layout,
// so Python's safetensors loads it and a file it wrote is reproduced byte for byte.
void write_safetensors(const std::filesystem::path& path, std::span<const SafetensorsEntry> tensors,
                       const std::map<std::string, std::string>& metadata = {});

// The bytes write_safetensors() would write (tests, and writers that stream elsewhere).
std::vector<std::byte> serialize_safetensors(std::span<const SafetensorsEntry> tensors,
                                             const std::map<std::string, std::string>& metadata = {});

// safetensors' dtype strings ("F32", "BF16", ...) for rtune's dtypes.
std::string_view safetensors_dtype_string(DType d);

}  // namespace rtune::io
