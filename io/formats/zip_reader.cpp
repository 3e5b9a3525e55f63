// Zip reading for .pth archives (see zip_reader.h). Layouts from PKWARE APPNOTE 4.3.x:
// end of central directory (4.3.16), ZIP64 end record + locator (4.3.14/15), central directory
// header (4.3.12), local file header (4.3.7), ZIP64 extra field (4.5.3).
#include "io/formats/zip_reader.h"

#include <array>

#include "engine/error.h"
#include "engine/printable.h"
#include "io/formats/stored_checked.h"

namespace rtune::io {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr uint32_t kEnd64Sig = 0x06064b50, kLocator64Sig = 0x07064b50;

// Little-endian reads at an offset the caller has bounds-checked.
uint64_t le(std::span<const std::byte> b, uint64_t at, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | uint64_t(b[at + uint64_t(i)]);
  return v;
}

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}

}  // namespace

uint32_t crc32(std::span<const std::byte> data) {
  static const std::array<uint32_t, 256> table = make_crc_table();
  uint32_t c = 0xFFFFFFFFu;
  for (std::byte b : data) c = table[(c ^ uint32_t(b)) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

ZipReader::ZipReader(std::span<const std::byte> bytes, std::string label) : bytes_(bytes), label_(std::move(label)) {
  const uint64_t size = bytes.size();
  auto need = [&](uint64_t at, uint64_t n, const char* what) {
    uint64_t end = 0;
    if (!add_ok(at, n, end) || end > size)
      fail("{}: zip: {} at offset {} runs past the end of the {}-byte file (truncated?)", label_, what, at, size);
  };
  if (size < 22) fail("{}: zip: {} bytes is too short for a zip archive (truncated?)", label_, size);

  // The end record sits in the last 22 + 65535 bytes (a comment may follow it).
  uint64_t eocd = UINT64_MAX;
  for (uint64_t p = size - 22 + 1; p-- > 0 && size - p <= 22 + 65535;) {
    if (le(bytes, p, 4) == kEndSig && p + 22 + le(bytes, p + 20, 2) <= size) {
      eocd = p;
      break;
    }
  }
  if (eocd == UINT64_MAX) fail("{}: zip: no end-of-central-directory record (truncated or not a zip)", label_);
  uint64_t count = le(bytes, eocd + 10, 2), cd_size = le(bytes, eocd + 12, 4), cd_offset = le(bytes, eocd + 16, 4);
  uint64_t cd_limit = eocd;  // the central directory ends before the end records
  if (eocd >= 20 && le(bytes, eocd - 20, 4) == kLocator64Sig) {
    uint64_t e64 = le(bytes, eocd - 20 + 8, 8);
    if (e64 > eocd - 20 || eocd - 20 - e64 < 56 || le(bytes, e64, 4) != kEnd64Sig)
      fail("{}: zip: ZIP64 locator points to offset {}, where there is no ZIP64 end record", label_, e64);
    count = le(bytes, e64 + 32, 8);
    cd_size = le(bytes, e64 + 40, 8);
    cd_offset = le(bytes, e64 + 48, 8);
    cd_limit = e64;
  } else if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    fail("{}: zip: end record defers to a ZIP64 record that is missing", label_);
  }
  uint64_t cd_end = 0;
  if (!add_ok(cd_offset, cd_size, cd_end) || cd_end > cd_limit)
    fail("{}: zip: central directory [{}, +{}) runs past its end records at {}", label_, cd_offset, cd_size, cd_limit);
  if (count > cd_size / 46) fail("{}: zip: {} entries cannot fit a {}-byte central directory", label_, count, cd_size);

  entries_.reserve(size_t(count));
  uint64_t p = cd_offset;
  for (uint64_t i = 0; i < count; ++i) {
    if (p + 46 > cd_end || le(bytes, p, 4) != kCentralSig)
      fail("{}: zip: central directory entry {} at offset {} is damaged", label_, i, p);
    ZipEntry e;
    e.method = uint16_t(le(bytes, p + 10, 2));
    e.crc = uint32_t(le(bytes, p + 16, 4));
    e.compressed_size = le(bytes, p + 20, 4);
    e.size = le(bytes, p + 24, 4);
    const uint64_t name_len = le(bytes, p + 28, 2), extra_len = le(bytes, p + 30, 2), comment_len = le(bytes, p + 32, 2);
    e.local_header_offset = le(bytes, p + 42, 4);
    const uint64_t rec_end = p + 46 + name_len + extra_len + comment_len;
    if (rec_end > cd_end) fail("{}: zip: central directory entry {} runs past the directory", label_, i);
    e.name.assign(reinterpret_cast<const char*>(bytes.data() + p + 46), size_t(name_len));
    // ZIP64 extra: the 8-byte values of whichever 32-bit fields are saturated, in this order.
    for (uint64_t x = p + 46 + name_len, xend = x + extra_len; x + 4 <= xend;) {
      const uint64_t id = le(bytes, x, 2), len = le(bytes, x + 2, 2);
      if (x + 4 + len > xend) fail("{}: zip: entry '{}' has a damaged extra field", label_, printable(e.name));
      if (id == 1) {
        uint64_t q = x + 4;
        for (uint64_t* f : {&e.size, &e.compressed_size, &e.local_header_offset}) {
          if (*f != 0xFFFFFFFF) continue;
          if (q + 8 > x + 4 + len) fail("{}: zip: entry '{}' has a short ZIP64 extra field", label_, printable(e.name));
          *f = le(bytes, q, 8);
          q += 8;
        }
      }
      x += 4 + len;
    }
    if (!index_.emplace(e.name, entries_.size()).second) fail("{}: zip: duplicate entry '{}'", label_, printable(e.name));

    // Data starts after the local header's own name and extra field (torch pads there).
    const uint64_t lh = e.local_header_offset;
    need(lh, 30, "local header");
    if (lh >= cd_offset || le(bytes, lh, 4) != kLocalSig)
      fail("{}: zip: entry '{}' has no local header at offset {}", label_, printable(e.name), lh);
    const uint64_t lname = le(bytes, lh + 26, 2), lextra = le(bytes, lh + 28, 2);
    need(lh + 30, lname + lextra, "local header name");
    if (lname != name_len || std::string_view(reinterpret_cast<const char*>(bytes.data() + lh + 30), lname) != e.name)
      fail("{}: zip: local header at {} names a different entry than the directory's '{}'", label_, lh, printable(e.name));
    const uint64_t flags = le(bytes, lh + 6, 2);
    const uint64_t lcsize = le(bytes, lh + 18, 4), lsize = le(bytes, lh + 22, 4);
    if (!(flags & 8) && lcsize != 0xFFFFFFFF && (lcsize != e.compressed_size || lsize != e.size))
      fail("{}: zip: entry '{}': local header sizes ({}, {}) disagree with the directory ({}, {})", label_, printable(e.name),
           lcsize, lsize, e.compressed_size, e.size);
    e.data_offset = lh + 30 + lname + lextra;
    uint64_t data_end = 0;
    if (!add_ok(e.data_offset, e.compressed_size, data_end) || data_end > cd_offset)
      fail("{}: zip: entry '{}' ({} bytes at offset {}) runs past the archive data", label_, printable(e.name),
           e.compressed_size, e.data_offset);
    entries_.push_back(std::move(e));
    p = rec_end;
  }
}

const ZipEntry* ZipReader::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &entries_[it->second];
}

std::span<const std::byte> ZipReader::read(const ZipEntry& e) const {
  if (e.method != 0)
    fail("{}: zip: entry '{}' is compressed (method {}); rtune reads the stored entries torch.save writes", label_,
         printable(e.name), e.method);
  if (e.compressed_size != e.size)
    fail("{}: zip: stored entry '{}' has compressed size {} != size {}", label_, printable(e.name), e.compressed_size, e.size);
  std::span<const std::byte> d = bytes_.subspan(size_t(e.data_offset), size_t(e.size));
  if (e.crc != 0) {
    const uint32_t got = crc32(d);
    if (got != e.crc)
      fail("{}: zip: entry '{}' fails its CRC check (stored {:08x}, computed {:08x}): the file is corrupt", label_,
           printable(e.name), e.crc, got);
  }
  return d;
}

}  // namespace rtune::io
