#include "finetune/infer.h"
#include <algorithm>
#include <fmt/format.h>
#include "engine/autograd.h"
#include "engine/functional.h"
#include "finetune/batch.h"
#include "io/data/walk.h"
#include "finetune/train_run.h"

namespace rtune::finetune {

namespace fs = std::filesystem;

InferenceModel load_inference_model(const fs::path& weights, const std::string& transforms, Device device) {
  InferenceModel m;
  m.loaded = finetune::load_model(weights);
  const auto& info = m.loaded.info;
  m.names = info.class_names;
  if (m.names.empty())
    for (int64_t i = 0; i < info.num_classes; ++i) m.names.push_back(std::to_string(i));
  const bool recorded = transforms.empty() && !info.eval_transforms.empty();
  if (!transforms.empty()) {
    m.transforms = transforms;
  } else if (recorded) {
    m.transforms = info.eval_transforms;  // the training run's validation pipeline, exactly
  } else {
    m.transforms = fmt::format("resize={},center_crop={},normalize={}:{}:{}/{}:{}:{}", info.input_size * 256 / 224,
                               info.input_size, info.mean[0], info.mean[1], info.mean[2], info.std[0], info.std[1],
                               info.std[2]);
  }
  try {
    m.pipeline = io::parse_pipeline(m.transforms);
  } catch (const Error& e) {
    if (!recorded) throw;
    fail("model file {}: its metadata 'eval_transforms' does not parse: {}", weights.string(), e.what());
  }
  if (!m.pipeline.batch_size()) fail("transforms '{}' do not end in a fixed size (add center_crop=S)", m.transforms);
  // A recorded pipeline without normalize was validated with the training run's normalisation, which the
  // metadata's mean/std hold.
  io::Normalize from_info;
  for (size_t c = 0; c < 3; ++c) from_info.mean[c] = float(info.mean[c]), from_info.std[c] = float(info.std[c]);
  m.norm = m.pipeline.normalize.value_or(recorded ? from_info : io::Normalize{});
  m.loaded.model->to(device);
  m.loaded.model->eval();
  return m;
}

std::vector<fs::path> collect_images(const std::vector<std::string>& args) {
  std::vector<fs::path> out;
  for (const auto& a : args) {
    if (io::is_folder(a)) {
      std::vector<fs::path> found;
      io::walk_tree(a, [&](const fs::path& p, bool is_dir) {
        if (!is_dir && io::has_image_extension(p)) found.push_back(p);
      });
      std::sort(found.begin(), found.end());
      if (found.empty()) fail("{}: no images in this folder", a);
      out.insert(out.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(a)) {
      out.emplace_back(a);
    } else {
      fail("{}: no such file or folder", a);
    }
  }
  return out;
}

PredictResult predict_files(InferenceModel& m, const std::vector<fs::path>& files, int64_t topk, int64_t batch,
                            int threads, Device device, bool strict) {
  io::Dataset ds;
  for (auto& f : files) ds.samples.push_back({f, 0});
  io::LoaderOptions lo;
  lo.batch_size = int(batch);
  lo.threads = threads;
  lo.host_memory = finetune::pinned_host_memory(device);
  lo.shuffle = false;
  lo.strict = strict;
  lo.skip_bad = true;  // a file that does not decode is left out (and reported), never given a substitute's scores
  io::Loader loader(ds, m.pipeline, lo);
  loader.start_epoch(0);
  NoGradGuard no_grad;
  nn::Autocast channels_last(nn::Precision::fp32, device);  // fp32 scores; channels-last on CUDA and AVX-512
  const int64_t c = m.loaded.info.num_classes;
  std::vector<Prediction> scored(files.size());
  io::Batch b;
  while (loader.next(b)) {
    Tensor probs = softmax(m.loaded.model->forward(finetune::input_tensor(b, m.norm, DType::f32, device, nn::Precision::fp32)));
    auto pv = probs.cpu().to(DType::f64).to_vector<double>();
    for (int64_t i = 0; i < b.size; ++i) {
      Prediction& p = scored[size_t(b.indices[size_t(i)])];
      p.path = files[size_t(b.indices[size_t(i)])].string();
      for (int64_t k : finetune::topk_indices(pv.data() + i * c, c, topk)) p.topk.emplace_back(k, pv[size_t(i * c + k)]);
    }
  }
  PredictResult r;
  for (auto& p : scored)
    if (!p.topk.empty()) r.predictions.push_back(std::move(p));
  for (const io::SkippedSample& s : loader.skipped_samples()) r.skipped.push_back({files[s.index].string(), s.reason});
  if (r.predictions.empty())
    fail("none of the {} image(s) could be decoded (each is named above with the reason)", files.size());
  return r;
}

nlohmann::json predictions_json(const InferenceModel& m, const std::string& weights, const PredictResult& r) {
  nlohmann::json j{{"model", weights}, {"arch", m.loaded.info.arch}, {"num_classes", m.loaded.info.num_classes},
                   {"transforms", m.transforms}, {"predictions", nlohmann::json::array()}};
  for (const auto& p : r.predictions) {
    nlohmann::json top = nlohmann::json::array();
    for (auto& [k, s] : p.topk) top.push_back({{"class", k}, {"name", m.names[size_t(k)]}, {"score", s}});
    j["predictions"].push_back({{"path", p.path}, {"top", top}});
  }
  if (!r.skipped.empty()) {
    j["skipped"] = nlohmann::json::array();
    for (const auto& s : r.skipped) j["skipped"].push_back({{"path", s.path}, {"reason", s.reason}});
  }
  return j;
}

}  // namespace rtune::finetune
