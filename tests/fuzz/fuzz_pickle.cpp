// Fuzzes io/pickle_vm, the restricted unpickler: every opcode, the global table, persistent ids,
// tensor rebuilds and the limits. Runs pickles one after another, as the legacy .pth format does.
#include "io/formats/pickle_vm.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rtune;
  const auto bytes = fuzz::as_bytes(data, size);
  // Small limits, so that the bounds are reached by inputs of fuzzing size.
  io::pickle::Unpickler up("fuzz.pkl", {.max_nodes = 4096, .max_memo = 1024, .max_depth = 50, .max_marks = 64});
  fuzz::expect_only_rtune_errors([&] {
    size_t pos = 0;
    while (pos < bytes.size()) {
      const size_t before = pos;
      const uint32_t root = up.run(bytes, pos);
      fuzz::require(pos > before && pos <= bytes.size(), "run() ends past its STOP, inside the input");
      fuzz::g_sink = unsigned(up.node(root).kind);
    }
  });
  // Every tensor reference names a storage the machine recorded.
  for (const io::pickle::TensorRef& t : up.tensors)
    fuzz::require(t.storage < up.storages.size(), "a tensor names a recorded storage");
  return 0;
}
