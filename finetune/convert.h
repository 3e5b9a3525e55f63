// `rtune convert`: a torchvision ResNet state_dict (.pth zip or legacy, training checkpoint,
// DataParallel, fp16, or a plain .safetensors) -> an rtune model file (finetune/model_file.h).
// The weights must load strictly into the architecture (given or inferred from the keys), exactly as
// `resnet.load_state_dict(sd)` would accept them in PyTorch.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>
#include "finetune/model_file.h"

namespace rtune::finetune {

struct ConvertOptions {
  std::filesystem::path input, output;
  std::string arch;               // "" = infer from the keys (or the input's metadata)
  std::string key;                // nested state dict inside a checkpoint ("" = auto)
  std::filesystem::path classes;  // names.txt / names.json ("" = keep the input's names, if any)
  int64_t input_size = 0;         // 0 = keep the input's (rtune model file) or 224
  DType dtype = DType::f32;       // floating dtype on disk
};

struct ConvertResult {
  std::string source_format;               // "PyTorch zip archive, torch.save since 1.6", "safetensors", …
  bool arch_inferred = false;              // false: from --arch or the input's metadata
  std::vector<std::string> notes;          // what the reader and the class-name parser did
  finetune::ModelInfo info;                  // what was written
  size_t tensor_count = 0;
  int64_t parameter_count = 0;
  std::map<std::string, int64_t> dtype_changes;  // "float16 -> float32" -> number of tensors
  uintmax_t bytes_written = 0;
};

// requires: input readable; output not the same file as input; its folder exists.
// ensures: output written atomically; load_model(output) gives bit-identical tensors (for f32 sources).
ConvertResult convert_model(const ConvertOptions& o);

// A few lines saying what convert_model did (printed by the CLI).
std::string describe(const ConvertResult& r, const ConvertOptions& o);

// Class names from a text file (one per line) or JSON: a list, an object keyed by class index
// ({"0": "cat", …}; keys 1..N are read as 1-based and noted), or ImageNet's {"0": ["n01440764", "tench"]}.
struct ClassNames {
  std::vector<std::string> names;  // by class index
  std::string note;                // e.g. "keys 1..102 read as 1-based class indices"
  std::vector<std::pair<std::string, std::string>> by_key;  // a JSON object's (key, name) entries; else empty
  std::string not_indexed;         // why an object's keys are not class indices ("" when they are)
};
ClassNames read_class_names(const std::filesystem::path& path);
// Display names for an ImageFolder's class folders (sorted by name), e.g. the PyTorch flowers tutorial's
// cat_to_name.json {"1": "pink primrose", "10": "globe thistle", …}: an object whose keys are the folder
// names maps by folder name; one whose keys name some folders (or with numbered folders) but not exactly
// all of them is an error listing the folders without a key and the keys without a folder; other index
// keys, lists and text files go by position over the sorted folders. The note says which was done.
ClassNames names_for_folders(const std::filesystem::path& path, const std::vector<std::string>& folders);

}  // namespace rtune::finetune
