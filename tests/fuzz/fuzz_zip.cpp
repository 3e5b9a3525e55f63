// Fuzzes io/zip_reader: the end records (classic and ZIP64), the central directory, local headers,
// and reading (with its CRC check) every entry the reader accepts.
#include "io/formats/zip_reader.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rtune;
  fuzz::expect_only_rtune_errors([&] {
    io::ZipReader zip(fuzz::as_bytes(data, size), "fuzz.zip");
    for (const io::ZipEntry& e : zip.entries()) {
      fuzz::require(zip.find(e.name) != nullptr, "a listed entry is found by name");
      fuzz::expect_only_rtune_errors([&] { fuzz::g_sink = fuzz::touch(zip.read(e)); });
    }
  });
  return 0;
}
