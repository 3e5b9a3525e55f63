// Reading weight files (.safetensors, .pth) into host tensors, and loading them into a ResNet:
// strict by default (missing, unexpected and shape-mismatched keys are all listed), with an explicit
// option to replace the classification head when its class count differs.
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>
#include "models/resnet.h"

namespace rtune::finetune {

struct WeightFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // CPU tensors in file order, names cleaned
  std::map<std::string, std::string> metadata;          // safetensors __metadata__ (empty for .pth)
  std::vector<std::string> notes;                       // what the reader did (prefix stripped, key used, …)
};
// Picks the reader from the file's content (zip / pickle / safetensors header), not its extension.
// `key` selects a nested state dict inside a .pth checkpoint ("" = auto).
WeightFile read_weight_file(const std::filesystem::path& path, const std::string& key = "");

struct LoadOptions {
  bool strict = true;         // any missing/unexpected/mismatched key is an error
  bool replace_head = false;  // a differently sized fc is re-initialised as nn.Linear does, not an error
  uint64_t head_seed = 0;
};
struct LoadReport {
  std::vector<std::string> missing, unexpected, mismatched, notes;
  bool head_replaced = false;
  std::string summary() const;
};
// Copies the tensors into the model's parameters/buffers (converting dtype, keeping device). Throws
// with the whole report when strict and anything does not match.
LoadReport load_weights(models::ResNet& model, const std::vector<std::pair<std::string, Tensor>>& tensors,
                        const LoadOptions& o = {});

}  // namespace rtune::finetune
