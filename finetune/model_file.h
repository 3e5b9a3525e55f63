// The rtune model file: a safetensors file (huggingface/safetensors layout, so Python's
// `safetensors.torch.load_file` reads it and `resnet.load_state_dict(...)` accepts it) whose
// `__metadata__` makes it self-describing. Keys (all string values, as safetensors requires):
//   format        "rtune-model"                 rtune_version  e.g. "0.1.0"
//   arch          resnet18|34|50|101|152        width          base width (torchvision: 64)
//   num_classes   fc outputs                    class_names    JSON array of strings ([] = unnamed)
//   input_size    training/eval crop (224)      mean, std      JSON arrays of 3 numbers (ImageNet default)
//   source        optional: what it was converted/fine-tuned from
//   class_folders optional: JSON array, the ImageFolder class folder each output was trained on (the
//                 names `rtune eval --data` matches folders by; class_names are then display names)
//   eval_transforms optional: the validation transform spec of the training run (io/transforms/pipeline.h
//                 syntax); eval/predict use it instead of the ImageNet-style preset for input_size, and
//                 mean/std when it has no normalize
// plus any further caller keys (ModelInfo::extra). Tensors are the torchvision state_dict names.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include "finetune/weights.h"

namespace rtune::finetune {

inline constexpr const char* kModelFormat = "rtune-model";
// The largest input_size a model file may state (as `rtune train --image-size` allows): the eval
// transforms allocate batches of input_size^2 pixels, so hostile metadata must not claim gigabytes.
inline constexpr int64_t kMaxInputSize = 4096;

struct ModelInfo {
  std::string arch;  // "" = take it from the model (save) / the file (load)
  int64_t width = 64, num_classes = 1000;
  std::vector<std::string> class_names;  // empty, or exactly num_classes names
  std::vector<std::string> class_folders;  // empty, or exactly num_classes folder names (optional key)
  std::string eval_transforms;               // "" = not recorded (optional key)
  int64_t input_size = 224;
  std::array<double, 3> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};
  std::string source;                        // optional provenance ("" = not written)
  std::map<std::string, std::string> extra;  // further metadata keys; may not shadow the keys above
};

// The metadata map save_model writes, and its validated inverse. `label` names the file in errors.
// info_from_metadata requires format == "rtune-model" and every key above, well-formed.
std::map<std::string, std::string> info_to_metadata(const ModelInfo& info);
ModelInfo info_from_metadata(const std::map<std::string, std::string>& meta, const std::string& label);

// Writes the model's whole state_dict (parameters and buffers, torchvision names) atomically.
// requires: info.arch empty or equal to the model's; info.class_names empty or num_classes long.
// ensures: arch/width/num_classes in the file come from model.config(); floating tensors are stored as
//          `on_disk` (f32 by default; f16/bf16/f64 allowed), num_batches_tracked stays int64.
void save_model(const std::filesystem::path& path, models::ResNet& model, const ModelInfo& info, DType on_disk = DType::f32);

struct LoadModelOptions {
  std::string arch;         // "" = from metadata, else inferred from the keys; if set it must agree
  std::string key;          // nested state dict inside a .pth checkpoint ("" = auto)
  int64_t num_classes = 0;  // 0 = as in the file; else the model gets this many (needs replace_head if different)
  bool replace_head = false;
  uint64_t head_seed = 0;
  DType dtype = DType::f32;  // the model's floating dtype after loading
};
struct LoadedModel {
  std::unique_ptr<models::ResNet> model;  // CPU, eval() mode
  ModelInfo info;                 // metadata, or defaults + the inferred arch for plain weight files
  LoadReport report;              // notes say what the reader did (prefix stripped, key used, …)
  bool had_metadata = false;      // true when the file was an rtune model file
};
// Loads an rtune model file (the arch from its metadata) or a plain torchvision .pth / .safetensors
// state_dict (arch, width and class count inferred with infer_arch). Strict: throws with the full
// missing/unexpected/mismatched report. Class names are dropped when the head is replaced.
LoadedModel load_model(const std::filesystem::path& path, const LoadModelOptions& opts = {});
// The same from weights already read (convert inspects the file first); `label` names them in errors.
LoadedModel load_model(WeightFile weights, const std::string& label, const LoadModelOptions& opts = {});

// Metadata only (the tensors are not read), validated, and cross-checked against the header's
// conv1.weight / fc.weight shapes. Throws naming the file and the bad or missing key.
ModelInfo read_model_info(const std::filesystem::path& path);
// The same on bytes in memory (fuzzing); `label` names them in errors.
ModelInfo read_model_info_bytes(std::vector<std::byte> bytes, const std::string& label);

// True when `path` is a safetensors file whose metadata says format == "rtune-model" (never throws for
// other files; they are just "not a model file").
bool is_model_file(const std::filesystem::path& path);

}  // namespace rtune::finetune
