// What `rtune eval` and `rtune predict` share: a model file loaded with the eval transforms its
// metadata records (the training run's --val-transforms), or else implies (Resize(S*256/224) +
// CenterCrop(S) + Normalize(mean, std), as torchvision's ImageNet eval preset), batched inference with softmax scores, and image collection from paths.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>
#include <nlohmann/json.hpp>
#include "finetune/trainer.h"
#include "finetune/model_file.h"

namespace rtune::finetune {

struct InferenceModel {
  finetune::LoadedModel loaded;
  io::Pipeline pipeline;
  io::Normalize norm;
  std::vector<std::string> names;  // class names (metadata, or "0".."N-1")
  std::string transforms;          // the spec used
};
// `transforms` "" = from the metadata (eval_transforms, else input_size, mean, std).
InferenceModel load_inference_model(const std::filesystem::path& weights, const std::string& transforms, Device device);

struct Prediction {
  std::string path;
  std::vector<std::pair<int64_t, double>> topk;  // (class, softmax probability), best first
};
struct SkippedFile {
  std::string path, reason;  // an image that does not decode, and why
};
struct PredictResult {
  std::vector<Prediction> predictions;  // the files that decoded, in the order given
  std::vector<SkippedFile> skipped;     // the rest (none when strict: the first one is an error)
};
// Scores every file; one that does not decode is skipped with a warning (or, `strict`, stops the
// run with an error naming it). Throws when none of them decodes.
PredictResult predict_files(InferenceModel& m, const std::vector<std::filesystem::path>& files, int64_t topk,
                            int64_t batch, int threads, Device device, bool strict = false);
// Files as given, folders searched recursively for images (sorted). Throws for a path that is neither.
std::vector<std::filesystem::path> collect_images(const std::vector<std::string>& args);
// {"model": ..., "arch": ..., "num_classes": N, "predictions": [{"path", "top": [{"class", "name", "score"}]}]}
// ... plus "skipped": [{"path", "reason"}] when some files did not decode.
nlohmann::json predictions_json(const InferenceModel& m, const std::string& weights, const PredictResult& r);

}  // namespace rtune::finetune
