#include "finetune/convert.h"
#include <algorithm>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>
#include <nlohmann/json.hpp>
#include "engine/printable.h"

namespace rtune::finetune {

namespace fs = std::filesystem;

namespace {
// What kind of file it is, from its first bytes (the same test read_weight_file uses to pick a reader).
std::string source_format(const fs::path& p, bool rtune_meta) {
  std::ifstream f(p, std::ios::binary);
  RTUNE_CHECK(f.good(), "convert: cannot open '{}'", p.string());
  unsigned char m[2] = {0, 0};
  f.read(reinterpret_cast<char*>(m), 2);
  if (m[0] == 'P' && m[1] == 'K') return "PyTorch zip archive, torch.save since 1.6";
  if (m[0] == 0x80) return "PyTorch legacy stream, torch.save before 1.6";
  return rtune_meta ? "rtune model file: safetensors with rtune metadata" : "safetensors";
}

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v);
  for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(size_t(i), ",");
  return s;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  RTUNE_CHECK(f.good(), "cannot open class names file '{}'", p.string());
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  if (s.rfind("\xEF\xBB\xBF", 0) == 0) s.erase(0, 3);  // UTF-8 byte-order mark (Windows editors)
  return s;
}

ClassNames names_from_json(const nlohmann::json& j, const std::string& label) {
  using nlohmann::json;
  // A value is a name, or ImageNet's [wnid, name] pair (take the last string).
  auto name_of = [&](const json& v, const std::string& where) -> std::string {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_array() && !v.empty() && v.back().is_string()) return v.back().get<std::string>();
    fail("class names {}: entry {} is {}, not a name", label, printable(where), printable(v.dump()));
  };
  ClassNames out;
  if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) out.names.push_back(name_of(j[i], std::to_string(i)));
    return out;
  }
  RTUNE_CHECK(j.is_object(), "class names {}: expected a JSON list of names or an object keyed by class index", label);
  RTUNE_CHECK(!j.empty(), "class names {}: the object is empty", label);
  for (auto& [k, v] : j.items()) out.by_key.emplace_back(k, name_of(v, "'" + k + "'"));
  // Keyed by class index? Otherwise the keys can only be folder names (see names_for_folders).
  std::map<int64_t, std::string> by_index;
  for (auto& [k, name] : out.by_key) {
    int64_t idx = -1;
    auto [end, ec] = std::from_chars(k.data(), k.data() + k.size(), idx);
    if (ec != std::errc() || end != k.data() + k.size() || idx < 0) {
      out.not_indexed = fmt::format("class names {}: key '{}' is not a class index (expected \"0\", \"1\", …)", label,
                                    printable(k));
      return out;
    }
    RTUNE_CHECK(by_index.emplace(idx, name).second, "class names {}: index {} appears twice", label, idx);
  }
  const int64_t n = int64_t(by_index.size());
  int64_t base = by_index.begin()->first;
  bool dense = by_index.rbegin()->first - base == n - 1;
  if (!dense || (base != 0 && base != 1)) {
    out.not_indexed = fmt::format("class names {}: keys must be the class indices 0..{} (or 1..{}); they run {}..{} with "
                                  "{} entries", label, n - 1, n, base, by_index.rbegin()->first, n);
    return out;
  }
  if (base == 1)
    out.note = fmt::format("class names: keys 1..{} read as 1-based (index 0 = \"{}\")", n,
                           printable(by_index.begin()->second));
  for (auto& [i, name] : by_index) out.names.push_back(name);
  return out;
}

bool is_index_text(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return c >= '0' && c <= '9'; });
}

ClassNames parse_class_names(const fs::path& path) {
  std::string text = read_text(path);
  const std::string label = "'" + path.string() + "'";
  ClassNames out;
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (ext == ".json") {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    RTUNE_CHECK(!j.is_discarded(), "class names {}: not valid JSON", label);
    out = names_from_json(j, label);
    for (auto& [k, name] : out.by_key) RTUNE_CHECK(!trim(name).empty(), "class names {}: the name of '{}' is empty", label, printable(k));
    if (!out.not_indexed.empty()) return out;
  } else {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(trim(line));
    while (!lines.empty() && lines.back().empty()) lines.pop_back();
    for (size_t i = 0; i < lines.size(); ++i)
      RTUNE_CHECK(!lines[i].empty(), "class names {}: line {} is empty (one name per line, no blank lines)", label, i + 1);
    out.names = std::move(lines);
  }
  RTUNE_CHECK(!out.names.empty(), "class names {}: no names found", label);
  for (size_t i = 0; i < out.names.size(); ++i)
    RTUNE_CHECK(!trim(out.names[i]).empty(), "class names {}: name {} is empty", label, i);
  return out;
}
}  // namespace

ClassNames read_class_names(const fs::path& path) {
  ClassNames out = parse_class_names(path);
  RTUNE_CHECK(out.not_indexed.empty(), "{}", out.not_indexed);
  return out;
}

ClassNames names_for_folders(const fs::path& path, const std::vector<std::string>& folders) {
  ClassNames cn = parse_class_names(path);
  const std::string label = "'" + path.string() + "'";
  const size_t n = folders.size();
  ClassNames out;
  if (cn.by_key.empty()) {  // a list or a text file: by position over the sorted folders
    RTUNE_CHECK(cn.names.size() == n, "class names {}: {} names for {} class folders", label, cn.names.size(), n);
    out.names = cn.names;
    out.note = fmt::format("class names: by position over the class folders sorted by name ('{}' = {})",
                           printable(folders[0]), printable(cn.names[0]));
    return out;
  }
  std::map<std::string, std::string> by_key(cn.by_key.begin(), cn.by_key.end());
  std::vector<std::string> missing, extra;  // folders without a key, keys without a folder
  for (const auto& f : folders)
    if (!by_key.count(f)) missing.push_back(f);
  const std::set<std::string> folder_set(folders.begin(), folders.end());
  for (auto& [k, name] : cn.by_key)
    if (!folder_set.count(k)) extra.push_back(k);
  if (missing.empty() && extra.empty()) {
    for (const auto& f : folders) out.names.push_back(by_key.at(f));
    out.note = fmt::format("class names: matched to the {} class folders by folder name", n);
    return out;
  }
  // Index keys are read by position only when they cannot be folder names: when a key names a folder
  // or the folders are numbered, the file is keyed by folder and reading it by position would give
  // folder "10" the name of another class (folders sort as text: "1", "10", "11", "2", …).
  const bool looks_by_folder = extra.size() < cn.by_key.size() || std::all_of(folders.begin(), folders.end(), is_index_text);
  if (looks_by_folder || !cn.not_indexed.empty())
    fail("class names {}: its keys are not the class folders' names{}{}{}", label,
         missing.empty() ? "" : fmt::format("; folders with no key: {}", printable_list(missing)),
         extra.empty() ? "" : fmt::format("; keys with no folder: {}", printable_list(extra)),
         looks_by_folder ? "" : fmt::format(" (nor class indices: {})", cn.not_indexed));
  RTUNE_CHECK(cn.names.size() == n, "class names {}: {} names for {} class folders", label, cn.names.size(), n);
  out.names = cn.names;
  out.note = fmt::format("class names: keys read as class indices over the class folders sorted by name ('{}' = {}){}",
                         printable(folders[0]), printable(cn.names[0]), cn.note.empty() ? "" : "; " + cn.note);
  return out;
}

ConvertResult convert_model(const ConvertOptions& o) {
  RTUNE_CHECK(fs::is_regular_file(o.input), "convert: input '{}' is not a readable file", o.input.string());
  RTUNE_CHECK(!o.output.empty(), "convert: no output path given");
  std::error_code ec;
  RTUNE_CHECK(!(fs::exists(o.output, ec) && fs::equivalent(o.input, o.output, ec)),
              "convert: refusing to overwrite the input '{}'; choose another output path", o.input.string());
  RTUNE_CHECK(!fs::is_directory(o.output), "convert: output '{}' is a folder; give a file name (…/model.safetensors)",
              o.output.string());
  fs::path folder = o.output.parent_path().empty() ? fs::path(".") : o.output.parent_path();
  RTUNE_CHECK(fs::is_directory(folder), "convert: output folder '{}' does not exist", folder.string());

  ConvertResult r;
  finetune::WeightFile wf = finetune::read_weight_file(o.input, o.key);
  auto fmt_it = wf.metadata.find("format");
  bool rtune_meta = fmt_it != wf.metadata.end() && fmt_it->second == kModelFormat;
  r.source_format = source_format(o.input, rtune_meta);
  r.arch_inferred = o.arch.empty() && !rtune_meta;
  for (auto& [name, t] : wf.tensors)
    if (is_floating(t.dtype()) && t.dtype() != o.dtype)
      ++r.dtype_changes[fmt::format("{} -> {}", dtype_name(t.dtype()), dtype_name(o.dtype))];

  finetune::LoadedModel lm = finetune::load_model(std::move(wf), o.input.string(), {.arch = o.arch, .key = o.key});
  r.notes = lm.report.notes;
  r.info = lm.info;
  r.info.source = rtune_meta && !lm.info.source.empty() ? lm.info.source : o.input.filename().string();
  if (o.input_size > 0) r.info.input_size = o.input_size, r.info.eval_transforms.clear();  // the new size's preset
  if (!o.classes.empty()) {
    ClassNames cn = read_class_names(o.classes);
    RTUNE_CHECK(int64_t(cn.names.size()) == r.info.num_classes,
                "convert: '{}' has {} class name(s) but the weights have {} classes (fc.weight is [{}, {}])",
                o.classes.string(), cn.names.size(), r.info.num_classes, r.info.num_classes, lm.model->feature_dim());
    r.info.class_names = std::move(cn.names);
    if (!cn.note.empty()) r.notes.push_back(cn.note);
  }
  finetune::save_model(o.output, *lm.model, r.info, o.dtype);
  auto sd = lm.model->state_dict();
  r.tensor_count = sd.size();
  for (auto& [n, p] : lm.model->named_parameters()) r.parameter_count += p->numel();
  r.bytes_written = fs::file_size(o.output);
  return r;
}

std::string describe(const ConvertResult& r, const ConvertOptions& o) {
  std::string s;
  s += fmt::format("read     {} ({})\n", o.input.string(), r.source_format);
  for (const std::string& n : r.notes) s += fmt::format("         {}\n", n);
  s += fmt::format("model    {} (width {}, {} classes){}\n", r.info.arch, r.info.width, r.info.num_classes,
                   r.arch_inferred ? ", inferred from the keys" : "");
  s += fmt::format("check    all {} tensors load strictly ({} parameters)\n", r.tensor_count, with_commas(r.parameter_count));
  if (r.dtype_changes.empty()) s += fmt::format("dtype    {} kept\n", dtype_name(o.dtype));
  for (auto& [what, n] : r.dtype_changes) s += fmt::format("dtype    {}: {} tensors\n", what, n);
  std::string names = r.info.class_names.empty()
                          ? "none (predictions will print class indices)"
                          : fmt::format("{} ({}, {}, …)", r.info.class_names.size(), printable(r.info.class_names.front()),
                                        r.info.class_names.size() > 1 ? printable(r.info.class_names[1]) : "");
  s += fmt::format("classes  {}\n", names);
  s += fmt::format("wrote    {} ({:.1f} MB, input size {}, mean/std ({}, {}, {})/({}, {}, {}))\n", o.output.string(),
                   double(r.bytes_written) / 1e6, r.info.input_size, r.info.mean[0], r.info.mean[1], r.info.mean[2],
                   r.info.std[0], r.info.std[1], r.info.std[2]);
  return s;
}

}  // namespace rtune::finetune
