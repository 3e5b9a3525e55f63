// data_jpeg_huffman: rtune's Huffman decoder (io/image/jpeg_huffman.cpp) against libjpeg-turbo's
// own. Both run through the same libjpeg API calls, one with use_rtune_huffman() after
// jpeg_start_decompress, and must give the same pixels: for files encoded here over every
// sampling, quality 30..100, standard and optimised tables (codes up to 16 bits), noise up to
// full-range; with rows skipped (the decoder is then called without blocks); for corrupt scans
// (flipped bytes, inserted markers, cut data), where the "premature end of data segment" warning
// must come exactly when libjpeg's does; and for altered Huffman tables.
#include <doctest/doctest.h>

#include <cstring>
#include <fmt/format.h>

#include "tests/data/image_test_util.h"
#include "tests/data/jpeg_two_decoders.h"
#include "tests/data/jpeg_test_files.h"

using namespace rtune;
using namespace rtune::io;

namespace {

using test::decode_with_libjpeg;
using Decoded = test::DecodedJpeg;

// Where the entropy-coded data of the (single) scan starts: after the SOS segment.
size_t scan_start(std::span<const std::byte> b) {
  for (size_t i = 2; i + 3 < b.size();) {
    REQUIRE(b[i] == std::byte{0xFF});
    const int marker = int(b[i + 1]);
    const size_t length = (size_t(b[i + 2]) << 8) | size_t(b[i + 3]);
    if (marker == 0xDA) return i + 2 + length;
    i += 2 + length;
  }
  FAIL("no SOS marker");
  return 0;
}

// The [begin, end) byte ranges of the Huffman table segments (DHT), after their length fields.
std::vector<std::pair<size_t, size_t>> huffman_table_segments(std::span<const std::byte> b) {
  std::vector<std::pair<size_t, size_t>> segments;
  for (size_t i = 2; i + 3 < b.size();) {
    const int marker = int(b[i + 1]);
    const size_t length = (size_t(b[i + 2]) << 8) | size_t(b[i + 3]);
    if (marker == 0xDA) break;
    if (marker == 0xC4) segments.push_back({i + 4, i + 2 + length});
    i += 2 + length;
  }
  return segments;
}

// Decodes with both decoders and holds rtune's to libjpeg's; returns whether rtune's was used.
bool check_same(std::span<const std::byte> jpg, int skip_rows, const std::string& what) {
  Decoded theirs, ours;
  decode_with_libjpeg(jpg, false, skip_rows, theirs);
  decode_with_libjpeg(jpg, true, skip_rows, ours);
  INFO(what);
  CHECK(ours.failed == theirs.failed);
  CHECK(ours.hit_marker == theirs.hit_marker);
  CHECK(test::comparable_warnings(ours) == test::comparable_warnings(theirs));
  if (ours.pixels != theirs.pixels) {
    size_t i = 0;
    while (i < ours.pixels.size() && i < theirs.pixels.size() && ours.pixels[i] == theirs.pixels[i]) ++i;
    FAIL_CHECK("pixels differ from libjpeg's, first at byte " << i << " of " << theirs.pixels.size());
  }
  return ours.rtune_decoder;
}

}  // namespace

TEST_CASE("rtune's Huffman decoder gives libjpeg-turbo's pixels for every sampling, quality and table") {
  struct Layout {
    int h, v;
    bool gray;
    const char* name;
  };
  const Layout layouts[] = {{2, 2, false, "4:2:0"}, {2, 1, false, "4:2:2"}, {1, 1, false, "4:4:4"},
                            {4, 1, false, "4:1:1"}, {4, 2, false, "4:1:0"}, {1, 1, true, "gray"}};
  const std::pair<int, int> sizes[] = {{1, 1}, {8, 8}, {17, 33}, {61, 90}};
  int taken = 0, files = 0;
  for (const Layout& l : layouts)
    for (auto [h, w] : sizes)
      for (int quality : {30, 90, 100})
        for (bool optimize : {false, true})
          for (int noise : {2, 64, 512}) {  // 512: every pixel random in 0..255 (clamped)
            const std::string what = fmt::format("{} {}x{} q{} {} noise {}", l.name, h, w, quality,
                                                 optimize ? "optimised" : "standard", noise);
            Image src = test::jpeg_test_picture(h, w, uint64_t(h * 7919 + w * 31 + quality + noise), noise);
            auto jpg = test::encode_jpeg(src, {.h_samp = l.h, .v_samp = l.v, .quality = quality,
                                              .optimize = optimize, .gray = l.gray});
            ++files;
            taken += check_same(jpg, 0, what);
            if (h > 16) check_same(jpg, h / 2 + 1, what + " rows skipped");  // whole iMCU rows skipped too
          }
  CHECK(taken == files);  // every one of these baseline files went through rtune's decoder
}

TEST_CASE("rtune's Huffman decoder takes restart intervals, and declines progressive and arithmetic files") {
  int files = 0, taken = 0;
  for (auto [h, w] : {std::pair{40, 56}, std::pair{97, 61}})
    for (int restart : {-1, 1, 2, 3, 7, 50}) {  // -1: every MCU row; else every `restart` MCUs
      for (bool gray : {false, true}) {
        const std::string what = fmt::format("{}x{} restart {}{}", h, w, restart, gray ? " gray" : "");
        Image src = test::jpeg_test_picture(h, w, uint64_t(h + restart), 128);
        auto jpg = test::encode_jpeg(src, {.restart_rows = restart < 0 ? 1 : 0, .restart_mcus = std::max(restart, 0),
                                           .gray = gray});
        ++files;
        taken += check_same(jpg, 0, what);
        check_same(jpg, 17, what + ", rows skipped");
      }
    }
  CHECK(taken == files);
  // RST markers out of turn, missing or one too many: libjpeg's resynchronisation decides.
  Image src = test::jpeg_test_picture(40, 56, 5, 128);
  auto restart = test::encode_jpeg(src, {.restart_mcus = 2});
  std::vector<size_t> rst;
  for (size_t i = scan_start(restart); i + 1 < restart.size(); ++i)
    if (restart[i] == std::byte{0xFF} && (int(restart[i + 1]) & 0xF8) == 0xD0) rst.push_back(i);
  REQUIRE(rst.size() > 4);
  auto swapped = restart;
  std::swap(swapped[rst[1] + 1], swapped[rst[2] + 1]);
  CHECK_FALSE(check_same(swapped, 0, "RST markers swapped"));
  auto missing = restart;
  missing.erase(missing.begin() + std::ptrdiff_t(rst[3]), missing.begin() + std::ptrdiff_t(rst[3] + 2));
  CHECK_FALSE(check_same(missing, 0, "an RST marker missing"));
  auto extra = restart;
  const std::byte next_rst{uint8_t(0xD0 + rst.size() % 8)};
  extra.insert(extra.end() - 2, {std::byte{0xFF}, next_rst});
  CHECK_FALSE(check_same(extra, 0, "an RST marker after the last interval"));

  auto baseline = test::encode_jpeg(src, {});
  CHECK(check_same(baseline, 0, "baseline"));
  // The same scan without its end-of-image marker: the data runs to the buffer's end, which
  // libjpeg's own decoder reports.
  std::vector<std::byte> cut(baseline.begin(), baseline.end() - 2);
  CHECK_FALSE(check_same(cut, 0, "no end marker"));
  CHECK_FALSE(check_same(test::encode_jpeg(src, {.progressive = true}), 0, "progressive"));
  CHECK_FALSE(check_same(test::encode_jpeg(src, {.arithmetic = true}), 0, "arithmetic"));
}

TEST_CASE("rtune's Huffman decoder reads corrupt scans as libjpeg-turbo does") {
  // Flipped bytes give invalid codes (17 bits, symbol 0), runs past coefficient 63 and huge DC
  // sums; an FF byte before a non-zero byte is a marker that ends the data early (the rest of the
  // image zero, one JWRN_HIT_MARKER); cut data ends early before the end marker.
  // Files 6 to 8 have restart intervals: a flipped byte spoils one segment, and the next restart
  // starts afresh; a missing or added RST marker leaves the file to libjpeg's decoder.
  Rng r(2024);
  int cases = 0, hit_marker = 0, taken = 0, restart_cases = 0, restart_taken = 0;
  for (int file = 0; file < 9; ++file) {
    Image src = test::jpeg_test_picture(48 + file * 8, 64, uint64_t(file), file % 2 ? 512 : 32);
    auto good = test::encode_jpeg(src, {.h_samp = 1 + file % 2, .v_samp = 1 + file % 2,
                                        .restart_rows = file == 7 ? 1 : 0, .restart_mcus = file == 6 ? 3 : file == 8 ? 1 : 0,
                                        .quality = 60 + (file % 6) * 8, .optimize = file >= 3});
    const size_t begin = scan_start(good), end = good.size() - 2;  // the coded bytes, EOI excluded
    for (int m = 0; m < 60; ++m, ++cases) {
      std::vector<std::byte> bad = good;
      const size_t at = begin + size_t(r.next_u64() % (end - begin));
      switch (m % 4) {
        case 0: bad[at] ^= std::byte(1 + r.next_u64() % 255); break;
        case 1:  // a marker inside the scan
          bad[at] = std::byte{0xFF};
          if (at + 1 < end) bad[at + 1] = std::byte(0xD0 + r.next_u64() % 8);
          break;
        case 2:  // the scan cut short before its end marker
          bad.erase(bad.begin() + std::ptrdiff_t(at), bad.begin() + std::ptrdiff_t(end));
          break;
        default:  // a run of random bytes
          for (size_t i = at; i < std::min(end, at + 16); ++i) bad[i] = std::byte(r.next_u64());
      }
      Decoded ours;
      decode_with_libjpeg(bad, true, 0, ours);
      (file >= 6 ? restart_taken : taken) += ours.rtune_decoder;
      restart_cases += file >= 6;
      hit_marker += ours.hit_marker;
      check_same(bad, 0, fmt::format("file {} mutation {} at byte {}", file, m, at));
      if (m % 3 == 0) check_same(bad, 9, fmt::format("file {} mutation {} at byte {}, rows skipped", file, m, at));
    }
  }
  MESSAGE(cases << " corrupt scans, " << taken + restart_taken << " decoded by rtune's decoder (" << restart_taken
                << " of the " << restart_cases << " with restart intervals), " << hit_marker
                << " ended early (JWRN_HIT_MARKER)");
  CHECK(taken > (cases - restart_cases) * 9 / 10);
  CHECK(restart_taken > restart_cases / 3);
  CHECK(hit_marker > cases / 4);
}

TEST_CASE("rtune's Huffman decoder reads altered Huffman tables as libjpeg-turbo does") {
  // A changed code count or symbol gives tables that libjpeg refuses (over-subscribed, a DC size
  // over 15: both decoders fail alike) or accepts: incomplete codes, codes moved to other lengths,
  // so that the scan reads as invalid codes (17 bits, symbol 0) and codes longer than the lookup.
  Rng r(77);
  int cases = 0, decoded = 0, taken = 0;
  for (int file = 0; file < 4; ++file) {
    Image src = test::jpeg_test_picture(40, 48 + file * 8, uint64_t(100 + file), 96);
    auto good = test::encode_jpeg(src, {.quality = 75 + file * 8, .optimize = file % 2 == 1});
    const auto segments = huffman_table_segments(good);
    REQUIRE(!segments.empty());
    for (int m = 0; m < 100; ++m, ++cases) {
      std::vector<std::byte> bad = good;
      const auto [begin, end] = segments[size_t(r.next_u64() % segments.size())];
      // Mostly the 16 code counts after a table's class/id byte, else any byte of the segment.
      const size_t at = m % 2 == 0 ? begin + 1 + size_t(r.next_u64() % 16) : begin + size_t(r.next_u64() % (end - begin));
      bad[at] = std::byte(m % 3 == 0 ? int(bad[at]) + 1 : m % 3 == 1 ? int(bad[at]) - 1 : int(r.next_u64() % 256));
      Decoded ours;
      decode_with_libjpeg(bad, true, 0, ours);
      decoded += !ours.failed;
      taken += ours.rtune_decoder;
      check_same(bad, 0, fmt::format("file {} table byte {} altered ({})", file, at, m));
    }
  }
  MESSAGE(cases << " altered tables: libjpeg accepted " << decoded << ", rtune's decoder took " << taken);
  CHECK(taken > cases / 4);
}
