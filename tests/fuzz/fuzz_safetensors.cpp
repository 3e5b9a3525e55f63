// Fuzzes io/safetensors: the header length, the JSON header (dtypes, shapes, offsets, __metadata__)
// and the views of every tensor it accepts.
#include "io/formats/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rtune;
  fuzz::expect_only_rtune_errors([&] {
    const auto bytes = fuzz::as_bytes(data, size);
    io::SafetensorsFile f = io::SafetensorsFile::from_bytes({bytes.begin(), bytes.end()}, "fuzz.safetensors");
    for (const auto& [key, value] : f.metadata()) fuzz::g_sink = unsigned(key.size() + value.size());
    for (const io::SafetensorsView& v : f.tensors()) {
      fuzz::require(f.find(v.name) == &v, "a listed tensor is found by name");
      fuzz::require(size_t(v.numel()) * dtype_size(v.dtype) == v.bytes.size(), "shape x dtype size == byte range");
      fuzz::g_sink = fuzz::touch(v.bytes);
    }
  });
  return 0;
}
