// See jpeg_huffman.h. The bit reader is the "lookahead" refill of F. Giesen's "Reading bits in far
// too many ways" (part 2): an 8-byte big-endian load OR-ed below the bits still held.
#include "io/image/jpeg_huffman.h"

#include <jerror.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

// libjpeg's entropy-decoder interface (jpegint.h; the same in IJG libjpeg 6b and every libjpeg-turbo
// release): jpeglib.h names the struct without its members, and this is the hook rtune replaces.
struct jpeg_entropy_decoder {
  void (*start_pass)(j_decompress_ptr cinfo);
  boolean (*decode_mcu)(j_decompress_ptr cinfo, JBLOCKROW* MCU_data);
  boolean insufficient_data;
};

namespace rtune::io {

namespace {

constexpr int kLookBits = 10;  // codes up to this long decode with one table lookup
// The most bytes one MCU can read: 10 blocks of a DC symbol and 63 AC symbols of at most 16 code and
// 15 value bits (an invalid code: 17 bits, and the block ends), rounded up. Only an MCU that starts
// this close to the end of its segment's data needs a bounds check.
constexpr size_t kMcuMaxBytes = 2560;
// Zeros after each segment's data: a refill reads 8 bytes ahead of the bits it has used.
constexpr size_t kSegmentPad = 32;

// Zigzag to natural order, then 63 up to index 127: a run that overshoots coefficient 63 in corrupt
// data lands on it, as with libjpeg's jpeg_natural_order[], and an end of block (a jump of 64, see
// HuffTable::small_ac) stores its 0 there.
constexpr std::array<uint8_t, 128> kNaturalOrder = [] {
  constexpr uint8_t zigzag[64] = {
      0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,  12, 19, 26, 33, 40, 48,
      41, 34, 27, 20, 13, 6,  7,  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23,
      30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};
  std::array<uint8_t, 128> order{};
  for (size_t k = 0; k < order.size(); ++k) order[k] = k < 64 ? zigzag[k] : 63;
  return order;
}();
constexpr int kEndOfBlockRun = 64;  // from any k >= 1, past the last coefficient

// HUFF_EXTEND: the value of `bits`, an s-bit magnitude category code (T.81 F.2.2.1).
inline int extend(uint32_t bits, int s) {
  return bits < (1u << (s - 1)) ? int(bits) - (1 << s) + 1 : int(bits);
}

struct HuffTable {
  // For the next kLookBits bits: (code length << 8) | symbol, or 0 for a longer (or invalid) code.
  std::array<uint16_t, 1 << kLookBits> code;
  // AC only: (value << 16) | (run << 8) | bits, when code and value bits fit in kLookBits; 0 if not.
  // The decoder skips `run` coefficients, stores `value` and moves on. A run of zeros (ZRL) is value
  // 0 after 15; an end of block is value 0 after kEndOfBlockRun: both store a 0 where the block is
  // still 0, so every short code takes this one path.
  std::array<int32_t, 1 << kLookBits> small_ac;
  // Canonical decoding of the longer codes, as libjpeg's d_derived_tbl.
  std::array<int32_t, 18> maxcode;  // largest code of each length, -1 if none; [17] a sentinel
  std::array<int32_t, 18> valoffset;
  std::array<uint8_t, 256> huffval;
  // What it was built from: a table equal to the last one is not rebuilt.
  std::array<uint8_t, 17> bits_of{};
  bool built = false;
};

// Builds `t` from a JHUFF_TBL libjpeg has already validated (jpeg_make_d_derived_tbl ran for every
// table of the scan in start_pass). Returns false for what it cannot hold.
bool build_table(const JHUFF_TBL& src, bool is_dc, HuffTable& t) {
  int count = 0;
  for (int l = 1; l <= 16; ++l) count += src.bits[l];
  if (count > 256) return false;
  if (t.built && std::equal(src.bits + 1, src.bits + 17, t.bits_of.begin() + 1) &&
      std::equal(src.huffval, src.huffval + count, t.huffval.begin()))
    return true;
  if (is_dc && std::any_of(src.huffval, src.huffval + count, [](UINT8 s) { return s > 15; })) return false;
  t.built = false;
  t.code.fill(0);
  t.small_ac.fill(0);
  std::copy(src.bits, src.bits + 17, t.bits_of.begin());
  std::fill(t.huffval.begin(), t.huffval.end(), 0);
  std::copy(src.huffval, src.huffval + count, t.huffval.begin());
  int32_t code = 0;
  int p = 0;
  for (int l = 1; l <= 16; ++l) {
    if (src.bits[l] == 0) {
      t.maxcode[l] = -1;
      t.valoffset[l] = 0;
    } else {
      t.valoffset[l] = p - code;
    }
    for (int i = 0; i < src.bits[l]; ++i, ++p, ++code) {
      if (code >= (int32_t(1) << l)) return false;  // over-subscribed (libjpeg refuses it too)
      t.maxcode[l] = code;
      if (l > kLookBits) continue;
      const int sym = src.huffval[p], run = sym >> 4, size = sym & 15;
      const int shift = kLookBits - l;
      for (int fill = 0; fill < (1 << shift); ++fill) {
        const int index = (code << shift) | fill;
        t.code[size_t(index)] = uint16_t((l << 8) | sym);
        if (is_dc || l + size > kLookBits) continue;
        if (size == 0) {  // libjpeg: a run of 15 is sixteen zeros, any other run ends the block
          t.small_ac[size_t(index)] = ((run == 15 ? 15 : kEndOfBlockRun) << 8) | l;
          continue;
        }
        const uint32_t value_bits = uint32_t(fill >> (shift - size)) & ((1u << size) - 1);
        const int value = extend(value_bits, size);
        t.small_ac[size_t(index)] = int32_t(uint32_t(value) << 16) | (run << 8) | (l + size);
      }
    }
    code <<= 1;
  }
  t.maxcode[17] = 0xFFFFF;
  t.valoffset[17] = 0;
  t.built = true;
  return true;
}

// Reads a scan's entropy-coded bytes, the stuffing removed.
struct BitReader {
  const uint8_t* next = nullptr;  // the next byte not yet in `bits`
  uint64_t bits = 0;              // the next `count` bits of the stream, from the top
  int count = 0;

  // At least 56 bits in `bits` afterwards; reads 8 bytes at `next`, which the padding allows.
  void refill() {
    uint64_t word;
    std::memcpy(&word, next, 8);
    bits |= __builtin_bswap64(word) >> count;
    next += (63 - count) >> 3;
    count |= 56;
  }
  uint32_t peek(int n) const { return uint32_t(bits >> (64 - n)); }
  void skip(int n) {
    bits <<= n;
    count -= n;
  }
};

struct Decoder {
  // The scan's coded data without stuffing: one segment per restart interval (one in all without
  // restarts), each followed by kSegmentPad zeros.
  std::vector<uint8_t> data;
  std::vector<size_t> segment_end;  // byte offsets in `data`; the next segment starts kSegmentPad on
  // The last kMcuMaxBytes of a segment are read from a copy followed by zeros, as libjpeg reads
  // zeros past the data: `in` then reads `tail`, whose first byte is data[tail_from].
  std::vector<uint8_t> tail;
  size_t tail_from = 0;
  bool in_tail = false;
  BitReader in;
  std::array<HuffTable, NUM_HUFF_TBLS> dc_tables, ac_tables;
  std::array<const HuffTable*, D_MAX_BLOCKS_IN_MCU> dc_of_block{}, ac_of_block{};
  std::array<int, D_MAX_BLOCKS_IN_MCU> component_of_block{};
  std::array<bool, D_MAX_BLOCKS_IN_MCU> store_block{};  // false: the component is not output
  std::array<int, MAX_COMPS_IN_SCAN> last_dc{};
  int blocks = 0;
  int restart_interval = 0, restarts_to_go = 0;  // in MCUs, as libjpeg counts them
  size_t segment = 0;
  bool out_of_data = false;

  // The bit position in `data`.
  size_t position() const {
    return in_tail ? tail_from * 8 + size_t(in.next - tail.data()) * 8 - size_t(in.count)
                   : size_t(in.next - data.data()) * 8 - size_t(in.count);
  }
  void seek(size_t bit) {
    in_tail = false;
    in = BitReader{data.data() + bit / 8, 0, 0};
    in.refill();
    in.skip(int(bit % 8));
  }
  // Reads the rest of the current segment from `tail`, from the current position on.
  void enter_tail(size_t segment_end) {
    const size_t bit = position();
    tail_from = bit / 8;
    tail.assign(data.begin() + std::ptrdiff_t(tail_from), data.begin() + std::ptrdiff_t(segment_end));
    tail.resize(tail.size() + kMcuMaxBytes + 8, 0);
    in_tail = true;
    in = BitReader{tail.data(), 0, 0};
    in.refill();
    in.skip(int(bit % 8));
  }
};

thread_local Decoder t_decoder;

// A code longer than kLookBits (or none): libjpeg's jpeg_huff_decode, on the top bits of `bits`.
// Returns (length << 8) | symbol; an invalid code is symbol 0 after 17 bits, as in libjpeg.
[[gnu::noinline]] uint32_t decode_long(const HuffTable& t, uint64_t bits) {
  int l = kLookBits + 1;
  int32_t code = int32_t(bits >> (64 - l));
  while (l <= 16 && code > t.maxcode[size_t(l)]) {
    ++l;
    code = int32_t(bits >> (64 - l));
  }
  if (l > 16) return 17u << 8;
  return uint32_t(l << 8) | t.huffval[size_t(code + t.valoffset[size_t(l)]) & 0xFF];
}

inline uint32_t decode_symbol(const HuffTable& t, const BitReader& in) {
  uint32_t e = t.code[in.peek(kLookBits)];
  return e != 0 ? e : decode_long(t, in.bits);
}

// `in` is the caller's local copy of d.in, so that it stays in registers.
inline void decode_block(Decoder& d, BitReader& in, int b, JCOEF* block) {
  in.refill();
  const uint32_t dc = decode_symbol(*d.dc_of_block[size_t(b)], in);
  in.skip(int(dc >> 8));
  const int dc_size = int(dc & 0xFF);
  int diff = 0;
  if (dc_size != 0) {
    diff = extend(in.peek(dc_size), dc_size);
    in.skip(dc_size);
  }
  // libjpeg's int arithmetic, without its overflow (malformed files can repeat +-2047 forever).
  int& last = d.last_dc[size_t(d.component_of_block[size_t(b)])];
  last = int(uint32_t(last) + uint32_t(diff));
  block[0] = JCOEF(last);

  const HuffTable& ac = *d.ac_of_block[size_t(b)];
  for (int k = 1; k < DCTSIZE2; ++k) {
    if (in.count < 32) in.refill();
    const int32_t small = ac.small_ac[in.peek(kLookBits)];
    if (small != 0) {
      k += (small >> 8) & 0xFF;
      block[kNaturalOrder[size_t(k)]] = JCOEF(small >> 16);
      in.skip(small & 0xFF);
      continue;
    }
    const uint32_t e = decode_symbol(ac, in);
    in.skip(int(e >> 8));
    const int run = int(e >> 4) & 15, size = int(e) & 15;
    if (size != 0) {
      k += run;
      block[kNaturalOrder[size_t(k)]] = JCOEF(extend(in.peek(size), size));
      in.skip(size);
    } else {
      if (run != 15) break;  // end of block
      k += 15;               // sixteen zeros
    }
  }
}

void decode_blocks(Decoder& d, BitReader& in, JBLOCKROW* MCU_data) {
  JBLOCK discard;
  for (int b = 0; b < d.blocks; ++b) {
    JCOEF* block = MCU_data != nullptr && d.store_block[size_t(b)] ? MCU_data[b][0] : discard;
    decode_block(d, in, b, block);
  }
}

// libjpeg's decode_mcu contract: MCU_data's blocks arrive zeroed; null when the rows are skipped.
boolean decode_mcu(j_decompress_ptr cinfo, JBLOCKROW* MCU_data) {
  Decoder& d = *static_cast<Decoder*>(cinfo->client_data);
  if (d.restart_interval != 0) {
    if (d.restarts_to_go == 0) {  // libjpeg's process_restart: the next segment, DC predictions 0
      if (d.segment + 1 == d.segment_end.size()) return TRUE;  // more MCUs than the file has: none
      d.seek((d.segment_end[d.segment++] + kSegmentPad) * 8);
      d.last_dc.fill(0);
      d.restarts_to_go = d.restart_interval;
      d.out_of_data = false;
      cinfo->entropy->insufficient_data = FALSE;
    }
    --d.restarts_to_go;
  }
  if (d.out_of_data) return TRUE;  // what libjpeg does: the rest of the segment is left zero (gray)
  const size_t end = d.segment_end[d.segment] * 8;
  if (!d.in_tail && end - d.position() < kMcuMaxBytes * 8) d.enter_tail(d.segment_end[d.segment]);
  BitReader in = d.in;  // a local copy stays in registers
  decode_blocks(d, in, MCU_data);
  d.in = in;
  if (d.in_tail && d.position() > end) {  // this MCU read zeros past the coded data
    d.out_of_data = true;
    cinfo->entropy->insufficient_data = TRUE;
    WARNMS(cinfo, JWRN_HIT_MARKER);
  }
  return TRUE;
}

// Copies the coded bytes from `p` up to the first marker that ends the scan into d.data without
// their stuffing (FF 00 is FF; FF fill bytes before a marker are skipped), one segment
// per restart interval: with `restarts`, the markers RST0, RST1, ... RST7, RST0, ... in turn divide
// the segments (any other marker ends the scan). Returns the first FF of the marker that ends the
// scan, or nullptr if the buffer ends first or the data has fill bytes before a stuffed zero (FF FF
// 00, invalid): libjpeg-turbo's fast path reads that FF FF as a marker and its slow path, re-decoding
// the MCU into the blocks the fast path already wrote, as data, so its coefficients depend on where
// its bit buffer refills; libjpeg's own decoder keeps such files (found by tests/fuzz).
const uint8_t* unstuff(const uint8_t* p, const uint8_t* end, bool restarts, Decoder& d) {
  std::vector<uint8_t>& out = d.data;
  out.clear();
  d.segment_end.clear();
  auto end_segment = [&] {
    d.segment_end.push_back(out.size());
    out.resize(out.size() + kSegmentPad, 0);
  };
  int next_restart = 0;
  for (;;) {
    const auto* ff = static_cast<const uint8_t*>(std::memchr(p, 0xFF, size_t(end - p)));
    if (ff == nullptr) return nullptr;
    out.insert(out.end(), p, ff);
    const uint8_t* q = ff + 1;
    while (q < end && *q == 0xFF) ++q;
    if (q == end) return nullptr;
    if (*q == 0) {
      if (q != ff + 1) return nullptr;
      out.push_back(0xFF);
    } else if (restarts && *q == 0xD0 + next_restart) {
      end_segment();
      next_restart = (next_restart + 1) & 7;
    } else {
      end_segment();
      return ff;
    }
    p = q + 1;
  }
}

}  // namespace

bool use_rtune_huffman(jpeg_decompress_struct& cinfo) {
  if (cinfo.progressive_mode || cinfo.arith_code || jpeg_has_multiple_scans(&cinfo) ||
      cinfo.entropy == nullptr || cinfo.src == nullptr || cinfo.unread_marker != 0 || cinfo.data_precision != 8 ||
      cinfo.blocks_in_MCU < 1 || cinfo.blocks_in_MCU > D_MAX_BLOCKS_IN_MCU || cinfo.comps_in_scan < 1 ||
      cinfo.comps_in_scan > MAX_COMPS_IN_SCAN)
    return false;
  Decoder& d = t_decoder;
  for (int c = 0; c < cinfo.comps_in_scan; ++c) {
    const jpeg_component_info* comp = cinfo.cur_comp_info[c];
    if (comp == nullptr || comp->dc_tbl_no < 0 || comp->dc_tbl_no >= NUM_HUFF_TBLS || comp->ac_tbl_no < 0 ||
        comp->ac_tbl_no >= NUM_HUFF_TBLS)
      return false;
    const JHUFF_TBL* dc = cinfo.dc_huff_tbl_ptrs[comp->dc_tbl_no];
    const JHUFF_TBL* ac = cinfo.ac_huff_tbl_ptrs[comp->ac_tbl_no];
    if (dc == nullptr || ac == nullptr || !build_table(*dc, true, d.dc_tables[size_t(comp->dc_tbl_no)]) ||
        !build_table(*ac, false, d.ac_tables[size_t(comp->ac_tbl_no)]))
      return false;
  }
  const uint8_t* begin = cinfo.src->next_input_byte;
  const uint8_t* end = begin + cinfo.src->bytes_in_buffer;
  const uint8_t* marker = unstuff(begin, end, cinfo.restart_interval != 0, d);
  if (marker == nullptr) return false;  // the data runs to the buffer's end (libjpeg reports that), or FF FF 00
  // One segment per restart interval, or libjpeg's resynchronisation (missing, repeated or
  // out-of-turn RST markers) decides.
  const size_t mcus = size_t(cinfo.MCUs_per_row) * size_t(cinfo.MCU_rows_in_scan);
  const size_t interval = cinfo.restart_interval;
  if (d.segment_end.size() != (interval == 0 ? 1 : (mcus + interval - 1) / interval)) return false;
  d.restart_interval = int(interval);
  d.restarts_to_go = int(interval);
  d.segment = 0;
  d.blocks = cinfo.blocks_in_MCU;
  for (int b = 0; b < d.blocks; ++b) {
    const int c = cinfo.MCU_membership[b];
    if (c < 0 || c >= cinfo.comps_in_scan) return false;
    const jpeg_component_info* comp = cinfo.cur_comp_info[c];
    d.component_of_block[size_t(b)] = c;
    d.dc_of_block[size_t(b)] = &d.dc_tables[size_t(comp->dc_tbl_no)];
    d.ac_of_block[size_t(b)] = &d.ac_tables[size_t(comp->ac_tbl_no)];
    d.store_block[size_t(b)] = comp->component_needed != 0;
  }
  d.last_dc.fill(0);
  d.seek(0);
  d.out_of_data = false;
  // The scan is ours now: libjpeg's marker reader resumes at the marker after it.
  cinfo.src->next_input_byte = marker;
  cinfo.src->bytes_in_buffer = size_t(end - marker);
  cinfo.client_data = &d;
  cinfo.entropy->decode_mcu = decode_mcu;
  return true;
}

}  // namespace rtune::io
