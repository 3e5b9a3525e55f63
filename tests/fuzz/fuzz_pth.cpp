// Fuzzes io/pth: format detection, the zip (data.pkl + data/<key>) and legacy containers, storage
// resolution, the state-dict search and the views of every tensor it returns.
#include "io/formats/pth.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rtune;
  fuzz::expect_only_rtune_errors([&] {
    io::PthContents c = io::load_pth_bytes(fuzz::as_bytes(data, size), "fuzz.pth");
    for (const auto& [name, t] : c.tensors) fuzz::g_sink = fuzz::touch(t.contiguous_bytes());
  });
  return 0;
}
