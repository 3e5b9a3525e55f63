// Fuzzes io/checkpoint loading: a safetensors file whose __metadata__ must say it is an rtune
// checkpoint and hold its state as JSON ("rtune.state"); every tensor becomes a host Tensor.
#include "io/formats/checkpoint.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rtune;
  fuzz::expect_only_rtune_errors([&] {
    const auto bytes = fuzz::as_bytes(data, size);
    io::Checkpoint ck = io::load_checkpoint_bytes({bytes.begin(), bytes.end()}, "fuzz.ckpt");
    for (const auto& [name, t] : ck.tensors) {
      fuzz::require(ck.find(name) != nullptr, "a loaded tensor is found by name");
      const auto* p = static_cast<const std::byte*>(t.raw_data());
      fuzz::g_sink = fuzz::touch({p, size_t(t.numel()) * dtype_size(t.dtype())});
    }
    fuzz::g_sink = unsigned(ck.state.size());
  });
  return 0;
}
