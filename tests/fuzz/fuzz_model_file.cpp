// Fuzzes the rtune model file's metadata (models/model_file): every key of __metadata__ parsed and
// validated, cross-checked with the conv1/fc shapes of the header. What it accepts must survive
// info_to_metadata -> info_from_metadata unchanged (the metadata save_model would write).
#include "finetune/model_file.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rtune;
  fuzz::expect_only_rtune_errors([&] {
    const auto bytes = fuzz::as_bytes(data, size);
    finetune::ModelInfo info = finetune::read_model_info_bytes({bytes.begin(), bytes.end()}, "fuzz.rtmodel");
    finetune::ModelInfo again = finetune::info_from_metadata(finetune::info_to_metadata(info), "re-written");
    fuzz::require(again.arch == info.arch && again.width == info.width && again.num_classes == info.num_classes &&
                      again.class_names == info.class_names && again.input_size == info.input_size &&
                      again.mean == info.mean && again.std == info.std && again.source == info.source &&
                      again.extra == info.extra,
                  "accepted metadata is written back unchanged");
  });
  return 0;
}
