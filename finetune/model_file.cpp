#include "finetune/model_file.h"
#include <charconv>
#include <set>
#include <nlohmann/json.hpp>
#include "engine/autograd.h"
#include "engine/printable.h"
#include "io/formats/safetensors.h"

namespace rtune::finetune {

namespace {
using json = nlohmann::json;

// The keys save_model owns; ModelInfo::extra may not use them.
const std::set<std::string>& reserved_keys() {
  static const std::set<std::string> k = {"format", "rtune_version", "arch",  "width", "num_classes",
                                          "class_names", "input_size", "mean", "std", "source",
                                          "class_folders", "eval_transforms"};
  return k;
}

const std::string& need(const std::map<std::string, std::string>& m, const std::string& key, const std::string& label) {
  auto it = m.find(key);
  RTUNE_CHECK(it != m.end(), "model file {}: metadata key '{}' is missing (the file is damaged or was not written by "
              "rtune; re-create it with `rtune convert`)", label, key);
  return it->second;
}

int64_t parse_positive(const std::string& s, const std::string& key, const std::string& label) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  RTUNE_CHECK(ec == std::errc() && end == s.data() + s.size() && v > 0,
              "model file {}: metadata '{}' must be a positive integer, got '{}'", label, key,
              printable(s));
  return v;
}

json parse_json(const std::string& s, const std::string& key, const std::string& label) {
  json j = json::parse(s, nullptr, /*allow_exceptions=*/false);
  RTUNE_CHECK(!j.is_discarded(), "model file {}: metadata '{}' is not valid JSON: '{}'", label, key, printable(s));
  return j;
}

std::array<double, 3> parse_triple(const std::string& s, const std::string& key, const std::string& label, bool positive) {
  json j = parse_json(s, key, label);
  RTUNE_CHECK(j.is_array() && j.size() == 3, "model file {}: metadata '{}' must be a JSON array of 3 numbers, got '{}'",
              label, key, printable(s));
  std::array<double, 3> out{};
  for (size_t i = 0; i < 3; ++i) {
    RTUNE_CHECK(j[i].is_number(), "model file {}: metadata '{}' must be a JSON array of 3 numbers, got '{}'", label, key,
                printable(s));
    out[i] = j[i].get<double>();
    RTUNE_CHECK(!positive || out[i] > 0, "model file {}: metadata '{}' entries must be positive, got '{}'", label, key,
                printable(s));
  }
  return out;
}

std::string dump_json(const json& j, const char* what) {
  try {
    return j.dump();
  } catch (const json::exception& e) {
    fail("model metadata: cannot write {} as JSON ({}); names must be valid UTF-8", what, e.what());
  }
}

void validate(const ModelInfo& info, const std::string& label) {
  models::arch_layers(info.arch);  // throws naming the supported archs
  RTUNE_CHECK(info.width > 0 && info.num_classes > 0 && info.input_size > 0,
              "model {}: width, num_classes and input_size must be positive (got {}, {}, {})", label, info.width,
              info.num_classes, info.input_size);
  RTUNE_CHECK(info.class_names.empty() || int64_t(info.class_names.size()) == info.num_classes,
              "model {}: {} class names for {} classes", label, info.class_names.size(), info.num_classes);
  RTUNE_CHECK(info.input_size <= kMaxInputSize, "model {}: input_size {} is over the limit of {} pixels", label,
              info.input_size, kMaxInputSize);
  RTUNE_CHECK(info.class_folders.empty() || int64_t(info.class_folders.size()) == info.num_classes,
              "model {}: {} class folders for {} classes", label, info.class_folders.size(), info.num_classes);
  for (double s : info.std) RTUNE_CHECK(s > 0, "model {}: std entries must be positive", label);
}

std::vector<std::string> parse_names(const std::string& text, const std::string& key, const std::string& label) {
  json j = parse_json(text, key, label);
  RTUNE_CHECK(j.is_array(), "model file {}: metadata '{}' must be a JSON array of strings", label, key);
  std::vector<std::string> names;
  for (const json& n : j) {
    RTUNE_CHECK(n.is_string(), "model file {}: metadata '{}' must hold only strings, found {}", label, key,
                printable(n.dump()));
    names.push_back(n.get<std::string>());
  }
  return names;
}

int64_t feature_dim(const ModelInfo& info) { return info.width * 8 * (models::is_bottleneck_arch(info.arch) ? 4 : 1); }
}  // namespace

std::map<std::string, std::string> info_to_metadata(const ModelInfo& info) {
  validate(info, "metadata");
  std::map<std::string, std::string> m;
  for (auto& [k, v] : info.extra) {
    RTUNE_CHECK(!reserved_keys().count(k), "model metadata: extra key '{}' would shadow rtune's own key", k);
    m[k] = v;
  }
  m["format"] = kModelFormat;
  m["rtune_version"] = RTUNE_VERSION;
  m["arch"] = info.arch;
  m["width"] = std::to_string(info.width);
  m["num_classes"] = std::to_string(info.num_classes);
  m["class_names"] = dump_json(json(info.class_names), "class_names");
  m["input_size"] = std::to_string(info.input_size);
  m["mean"] = dump_json(json(info.mean), "mean");
  m["std"] = dump_json(json(info.std), "std");
  if (!info.source.empty()) m["source"] = info.source;
  if (!info.class_folders.empty()) m["class_folders"] = dump_json(json(info.class_folders), "class_folders");
  if (!info.eval_transforms.empty()) m["eval_transforms"] = info.eval_transforms;
  return m;
}

ModelInfo info_from_metadata(const std::map<std::string, std::string>& meta, const std::string& label) {
  auto fmt_it = meta.find("format");
  RTUNE_CHECK(fmt_it != meta.end() && fmt_it->second == kModelFormat,
              "{} is not an rtune model file (its safetensors metadata has no format=\"{}\"); plain weight files "
              "can be turned into one with `rtune convert`", label, kModelFormat);
  need(meta, "rtune_version", label);
  ModelInfo info;
  info.arch = need(meta, "arch", label);
  try {
    models::arch_layers(info.arch);
  } catch (const Error& e) {
    fail("model file {}: metadata 'arch': {}", label, e.what());
  }
  info.width = parse_positive(need(meta, "width", label), "width", label);
  info.num_classes = parse_positive(need(meta, "num_classes", label), "num_classes", label);
  info.input_size = parse_positive(need(meta, "input_size", label), "input_size", label);
  RTUNE_CHECK(info.input_size <= kMaxInputSize, "model file {}: metadata 'input_size' {} is over the limit of {} pixels",
              label, info.input_size, kMaxInputSize);
  info.mean = parse_triple(need(meta, "mean", label), "mean", label, false);
  info.std = parse_triple(need(meta, "std", label), "std", label, true);
  info.class_names = parse_names(need(meta, "class_names", label), "class_names", label);
  if (auto it = meta.find("class_folders"); it != meta.end()) {
    info.class_folders = parse_names(it->second, "class_folders", label);
    RTUNE_CHECK(int64_t(info.class_folders.size()) == info.num_classes,
                "model file {}: metadata lists {} class folders but num_classes is {}", label, info.class_folders.size(),
                info.num_classes);
  }
  RTUNE_CHECK(info.class_names.empty() || int64_t(info.class_names.size()) == info.num_classes,
              "model file {}: metadata lists {} class names but num_classes is {}", label, info.class_names.size(),
              info.num_classes);
  if (auto it = meta.find("source"); it != meta.end()) info.source = it->second;
  if (auto it = meta.find("eval_transforms"); it != meta.end()) info.eval_transforms = it->second;
  for (auto& [k, v] : meta)
    if (!reserved_keys().count(k)) info.extra[k] = v;
  return info;
}

void save_model(const std::filesystem::path& path, models::ResNet& model, const ModelInfo& info_in, DType on_disk) {
  RTUNE_CHECK(is_floating(on_disk), "save_model: on-disk dtype must be floating, got {}", dtype_name(on_disk));
  const models::ResNetConfig& cfg = model.config();
  RTUNE_CHECK(info_in.arch.empty() || info_in.arch == cfg.arch, "save_model {}: info says {} but the model is a {}",
              path.string(), info_in.arch, cfg.arch);
  ModelInfo info = info_in;
  info.arch = cfg.arch;
  info.width = cfg.width;
  info.num_classes = cfg.num_classes;
  std::map<std::string, std::string> meta = info_to_metadata(info);

  NoGradGuard ng;
  std::vector<Tensor> keep;  // host copies the entries' byte spans point into
  std::vector<io::SafetensorsEntry> entries;
  auto sd = model.state_dict();
  keep.reserve(sd.size());
  for (auto& [name, slot] : sd) {
    Tensor t = slot->detach().to(Device::cpu());
    if (is_floating(t.dtype())) t = t.to(on_disk);
    keep.push_back(t.contiguous());
    const Tensor& c = keep.back();
    auto* p = static_cast<const std::byte*>(c.raw_data());
    entries.push_back({name, c.dtype(), c.shape(), {p, size_t(c.numel()) * dtype_size(c.dtype())}});
  }
  io::write_safetensors(path, entries, meta);
}

namespace {
ModelInfo model_info_from(const io::SafetensorsFile& f, const std::string& label) {
  ModelInfo info = info_from_metadata(f.metadata(), label);
  // The header is already parsed: make sure it describes the model the metadata claims.
  auto shape_of = [&](const char* name) {
    const io::SafetensorsView* v = f.find(name);
    RTUNE_CHECK(v, "model file {}: no '{}' tensor", label, name);
    return v->shape;
  };
  Shape conv1 = shape_of("conv1.weight"), fc = shape_of("fc.weight");
  RTUNE_CHECK(conv1.size() == 4 && conv1[0] == info.width, "model file {}: metadata width {} but conv1.weight is {}",
              label, info.width, shape_str(conv1));
  RTUNE_CHECK(fc == Shape({info.num_classes, feature_dim(info)}),
              "model file {}: metadata says {} with {} classes, which needs fc.weight [{}, {}], but it is {}", label,
              info.arch, info.num_classes, info.num_classes, feature_dim(info), shape_str(fc));
  return info;
}
}  // namespace

ModelInfo read_model_info(const std::filesystem::path& path) {
  return model_info_from(io::SafetensorsFile::open(path), path.string());
}

ModelInfo read_model_info_bytes(std::vector<std::byte> bytes, const std::string& label) {
  return model_info_from(io::SafetensorsFile::from_bytes(std::move(bytes), label), label);
}

bool is_model_file(const std::filesystem::path& path) {
  try {
    io::SafetensorsFile f = io::SafetensorsFile::open(path);
    auto it = f.metadata().find("format");
    return it != f.metadata().end() && it->second == kModelFormat;
  } catch (const Error&) {
    return false;
  }
}

LoadedModel load_model(const std::filesystem::path& path, const LoadModelOptions& opts) {
  return load_model(read_weight_file(path, opts.key), path.string(), opts);
}

LoadedModel load_model(WeightFile wf, const std::string& label, const LoadModelOptions& opts) {
  const std::filesystem::path path(label);
  LoadedModel out;
  auto fmt_it = wf.metadata.find("format");
  if (fmt_it != wf.metadata.end() && fmt_it->second == kModelFormat) {
    out.info = info_from_metadata(wf.metadata, path.string());
    out.had_metadata = true;
  } else {
    std::vector<std::pair<std::string, Shape>> shapes;
    for (auto& [n, t] : wf.tensors) shapes.emplace_back(n, t.shape());
    models::InferredArch a = models::infer_arch(shapes);
    out.info.arch = a.arch;
    out.info.width = a.width;
    out.info.num_classes = a.num_classes;
    out.info.source = path.filename().string();
  }
  if (!opts.arch.empty() && opts.arch != out.info.arch) {
    models::arch_layers(opts.arch);  // an unknown name gets the "expected resnet18, …" message
    fail("{}: asked for {} but the file holds a {} (width {}, {} classes){}", path.string(), opts.arch, out.info.arch,
         out.info.width, out.info.num_classes, out.had_metadata ? " according to its metadata" : ", inferred from its keys");
  }
  int64_t classes = opts.num_classes > 0 ? opts.num_classes : out.info.num_classes;
  out.model = std::make_unique<models::ResNet>(models::ResNetConfig{out.info.arch, out.info.width, classes});
  out.model->to(opts.dtype);
  out.report = load_weights(*out.model, wf.tensors, {.strict = true, .replace_head = opts.replace_head,
                                                      .head_seed = opts.head_seed});
  out.report.notes.insert(out.report.notes.begin(), wf.notes.begin(), wf.notes.end());
  if (classes != out.info.num_classes) {
    out.info.num_classes = classes;
    out.info.class_names.clear();
    out.info.class_folders.clear();
  }
  out.model->eval();
  return out;
}

}  // namespace rtune::finetune
