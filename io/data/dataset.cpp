// ImageFolder and list-file datasets (see dataset.h); scanning order follows torchvision's
// find_classes (sorted(scandir dirs)) and make_dataset (sorted(os.walk(..., followlinks=True)),
// sorted(fnames)). Python sorts str by code point, which std::string's byte order equals for UTF-8.
#include "io/data/dataset.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>

#include "engine/error.h"
#include "io/image/decode.h"

namespace fs = std::filesystem;

namespace rtune::io {

int64_t Dataset::num_classes() const {
  if (!classes.empty()) return int64_t(classes.size());
  int64_t m = -1;
  for (const Sample& s : samples) m = std::max(m, s.label);
  return m + 1;
}

bool has_image_extension(const fs::path& p) {
  static const char* const kExt[] = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"};
  std::string name = p.filename().string();
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  for (const char* e : kExt) {
    std::string_view ext(e);
    if (name.size() >= ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0) return true;
  }
  return false;
}

namespace {

struct Scanner {
  const ScanOptions& opt;
  Dataset& ds;
  std::vector<std::string> problems;

  void report(const std::string& line) {
    if (opt.warn) opt.warn(line);
    else std::fprintf(stderr, "warning: %s\n", line.c_str());
  }

  // Probes the header; on a bad file either throws (strict) or records a skip.
  bool accept(const fs::path& p) {
    if (!opt.probe) return true;
    try {
      probe_image(p);
      return true;
    } catch (const Error& e) {
      if (opt.strict) fail("dataset {}: bad image file: {}", ds.root.string(), e.what());
      ++ds.skipped;
      report(fmt::format("skipping bad image: {}", e.what()));
      return false;
    }
  }

  void summary() {
    if (ds.skipped > 0)
      report(fmt::format("dataset {}: skipped {} bad file(s), kept {}", ds.root.string(), ds.skipped, ds.samples.size()));
  }
};

}  // namespace

Dataset image_folder(const fs::path& root, const ScanOptions& opt) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) fail("ImageFolder: {}: not a directory", root.string());
  Dataset ds;
  ds.root = root;
  for (const auto& e : fs::directory_iterator(root, fs::directory_options::follow_directory_symlink)) {
    if (e.is_directory()) ds.classes.push_back(e.path().filename().string());
  }
  std::sort(ds.classes.begin(), ds.classes.end());
  if (ds.classes.empty()) fail("ImageFolder: {}: couldn't find any class folder", root.string());

  Scanner sc{opt, ds, {}};
  std::vector<std::string> empty_classes;
  for (size_t label = 0; label < ds.classes.size(); ++label) {
    // os.walk(followlinks=True) groups, sorted by directory path, files sorted within each.
    std::map<std::string, std::vector<std::string>> dirs;
    fs::path class_dir = root / ds.classes[label];
    dirs[class_dir.string()];
    for (auto it = fs::recursive_directory_iterator(class_dir, fs::directory_options::follow_directory_symlink);
         it != fs::recursive_directory_iterator(); ++it) {
      if (it->is_directory()) dirs[it->path().string()];
      else dirs[it->path().parent_path().string()].push_back(it->path().filename().string());
    }
    size_t before = ds.samples.size();
    for (auto& [dir, files] : dirs) {
      std::sort(files.begin(), files.end());
      for (const std::string& f : files) {
        fs::path p = fs::path(dir) / f;
        if (!has_image_extension(p)) continue;
        if (sc.accept(p)) ds.samples.push_back({p, int64_t(label)});
      }
    }
    if (ds.samples.size() == before) empty_classes.push_back(ds.classes[label]);
  }
  if (!empty_classes.empty())
    fail("ImageFolder: {}: found no valid file for the classes {} (supported extensions: .jpg, .jpeg, .png, .ppm, "
         ".bmp, .pgm, .tif, .tiff, .webp)",
         root.string(), fmt::join(empty_classes, ", "));
  sc.summary();
  return ds;
}

Dataset list_file_dataset(const fs::path& list, const fs::path& root, const ScanOptions& opt) {
  std::ifstream in(list);
  if (!in) fail("list dataset: {}: cannot open", list.string());
  Dataset ds;
  ds.root = root;
  Scanner sc{opt, ds, {}};
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t a = line.find_first_not_of(" \t");
    if (a == std::string::npos || line[a] == '#') continue;
    size_t b = line.find_last_not_of(" \t");
    size_t sep = line.find_last_of(" \t", b);
    if (sep == std::string::npos || sep < a)
      fail("list dataset: {}:{}: expected 'relative/path label', got '{}'", list.string(), lineno, line);
    std::string_view label_text(line.data() + sep + 1, b - sep);
    int64_t label = -1;
    auto [ptr, err] = std::from_chars(label_text.data(), label_text.data() + label_text.size(), label);
    if (err != std::errc() || ptr != label_text.data() + label_text.size() || label < 0)
      fail("list dataset: {}:{}: label '{}' is not an integer >= 0", list.string(), lineno, label_text);
    size_t e = line.find_last_not_of(" \t", sep);
    fs::path p = root / line.substr(a, e - a + 1);
    if (sc.accept(p)) ds.samples.push_back({p, label});
  }
  if (ds.samples.empty()) fail("list dataset: {}: no usable samples", list.string());
  sc.summary();
  return ds;
}

}  // namespace rtune::io
