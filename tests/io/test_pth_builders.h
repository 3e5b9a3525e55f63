// Byte builders for hand-made .pth files: protocol-2 pickle snippets, a stored zip archive laid out
// like torch.save's (optionally with ZIP64 records), and the legacy stream. Tests use them to make
// both valid and hostile inputs without Python.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "io/formats/zip_reader.h"

namespace pthb {

inline std::string le(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(char((v >> (8 * i)) & 0xff));
  return s;
}
inline std::string str(const std::string& s) { return "X" + le(s.size(), 4) + s; }            // BINUNICODE
inline std::string glob(const std::string& m, const std::string& n) { return "c" + m + "\n" + n + "\n"; }
inline std::string num(int64_t v) { return "\x8a\x08" + le(uint64_t(v), 8); }                 // LONG1, 8 bytes
inline std::string tup(const std::vector<int64_t>& v) {
  std::string s = "(";
  for (int64_t x : v) s += num(x);
  return s + "t";
}

// _rebuild_tensor_v2(('storage', torch.<cls>, key, 'cpu', numel), offset, size, stride, False, OrderedDict())
inline std::string tensor(const std::string& key, int64_t numel, int64_t offset, const std::vector<int64_t>& size,
                          const std::vector<int64_t>& stride, const std::string& cls = "FloatStorage") {
  return glob("torch._utils", "_rebuild_tensor_v2") + "((" + str("storage") + glob("torch", cls) + str(key) + str("cpu") +
         num(numel) + "tQ" + num(offset) + tup(size) + tup(stride) + "\x89" + glob("collections", "OrderedDict") + ")Rt" +
         "R";
}

// {name: value, ...} as a whole protocol-2 pickle; values are pickle snippets.
inline std::string dict(const std::vector<std::pair<std::string, std::string>>& items) {
  std::string s = "\x80\x02}(";
  for (const auto& [k, v] : items) s += str(k) + v;
  return s + "u.";
}

inline std::vector<std::byte> bytes(const std::string& s) {
  std::vector<std::byte> b(s.size());
  if (!s.empty()) std::memcpy(b.data(), s.data(), s.size());
  return b;
}

inline std::string floats(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
  return s;
}

struct ZipOptions {
  bool zip64 = false;          // saturate 32-bit fields, put the real values in ZIP64 extras/records
  bool zero_crc = false;       // CRC switched off (torch's set_crc32_options(False))
  bool pad = true;             // torch's "FB" padding in the local extra field
};

// A stored zip archive, laid out like miniz writes for torch.save (sizes and CRC in the central dir).
inline std::string zip(const std::vector<std::pair<std::string, std::string>>& entries, ZipOptions o = {}) {
  std::string out, cd;
  for (const auto& [name, data] : entries) {
    const uint64_t off = out.size();
    const uint32_t crc = o.zero_crc ? 0 : rtune::io::crc32(std::as_bytes(std::span<const char>(data.data(), data.size())));
    std::string extra;
    if (o.pad) {
      const size_t base = off + 30 + name.size() + 4;
      const size_t padn = (64 - base % 64) % 64;
      extra = "FB" + le(padn, 2) + std::string(padn, 'Z');
    }
    out += le(0x04034b50, 4) + le(20, 2) + le(0x0808, 2) + le(0, 2) + le(0, 4) + le(0, 4) + le(0, 4) + le(0, 4) +
           le(name.size(), 2) + le(extra.size(), 2) + name + extra + data;
    out += le(0x08074b50, 4) + le(crc, 4) + le(data.size(), 4) + le(data.size(), 4);  // data descriptor
    std::string cextra;
    const uint64_t s32 = o.zip64 ? 0xFFFFFFFF : data.size(), o32 = o.zip64 ? 0xFFFFFFFF : off;
    if (o.zip64) cextra = le(1, 2) + le(24, 2) + le(data.size(), 8) + le(data.size(), 8) + le(off, 8);
    cd += le(0x02014b50, 4) + le(45, 2) + le(45, 2) + le(0x0808, 2) + le(0, 2) + le(0, 4) + le(crc, 4) + le(s32, 4) +
          le(s32, 4) + le(name.size(), 2) + le(cextra.size(), 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(o32, 4) +
          name + cextra;
  }
  const uint64_t cd_off = out.size();
  out += cd;
  const uint64_t n = entries.size();
  if (o.zip64) {
    const uint64_t e64 = out.size();
    out += le(0x06064b50, 4) + le(44, 8) + le(45, 2) + le(45, 2) + le(0, 4) + le(0, 4) + le(n, 8) + le(n, 8) +
           le(cd.size(), 8) + le(cd_off, 8);
    out += le(0x07064b50, 4) + le(0, 4) + le(e64, 8) + le(1, 4);
    out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(0xFFFF, 2) + le(0xFFFF, 2) + le(0xFFFFFFFF, 4) +
           le(0xFFFFFFFF, 4) + le(0, 2);
  } else {
    out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(n, 2) + le(n, 2) + le(cd.size(), 4) + le(cd_off, 4) + le(0, 2);
  }
  return out;
}

// A torch.save-style archive: archive/data.pkl, byteorder, data/<key>..., version.
inline std::vector<std::byte> pth(const std::string& pickle, const std::vector<std::pair<std::string, std::string>>& storages,
                                  ZipOptions o = {}, const std::string& prefix = "archive") {
  std::vector<std::pair<std::string, std::string>> e = {{prefix + "/data.pkl", pickle}, {prefix + "/byteorder", "little"}};
  for (const auto& [k, d] : storages) e.push_back({prefix + "/data/" + k, d});
  e.push_back({prefix + "/version", "3\n"});
  return bytes(zip(e, o));
}

// The legacy stream: magic, 1001, sys_info, object, key list, then (i64 count, bytes) per key.
inline std::vector<std::byte> legacy(const std::string& object_pickle,
                                     const std::vector<std::tuple<std::string, int64_t, std::string>>& storages) {
  std::string s = "\x80\x02\x8a\x0a" + std::string("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10) + ".";
  s += "\x80\x02M\xe9\x03.";
  s += "\x80\x02}(" + str("protocol_version") + "M\xe9\x03" + str("little_endian") + "\x88" + "u.";
  s += object_pickle;
  s += "\x80\x02(";
  for (const auto& st : storages) s += str(std::get<0>(st));
  s += "l.";
  for (const auto& st : storages) s += le(uint64_t(std::get<1>(st)), 8) + std::get<2>(st);
  return bytes(s);
}

}  // namespace pthb
