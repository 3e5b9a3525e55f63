// ImageFolder and list-file datasets (see dataset.h); scanning order follows torchvision's
// find_classes (sorted(scandir dirs)) and make_dataset (sorted(os.walk(..., followlinks=True)),
// sorted(fnames)). Python sorts str by code point, which std::string's byte order equals for UTF-8.
#include "io/data/dataset.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <system_error>
#include <thread>

#include <fmt/format.h>

#include "engine/error.h"
#include "engine/printable.h"
#include "io/data/walk.h"
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

// Header probes of every candidate file, run on several threads: on cold storage a probe waits on
// the disk (open + the first read) far longer than it computes, so a scan of a large dataset is
// latency-bound. Returns each file's error text, empty for a good file, in input order.
std::vector<std::string> probe_all(const std::vector<fs::path>& paths) {
  std::vector<std::string> errors(paths.size());
  const size_t threads = std::min<size_t>(paths.size(), std::clamp<size_t>(2 * std::thread::hardware_concurrency(), 4, 32));
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < paths.size();) {
      try {
        probe_image(paths[i]);
      } catch (const Error& e) {
        errors[i] = e.what();
        if (errors[i].empty()) errors[i] = "unknown error";
      } catch (const std::exception& e) {  // e.g. std::bad_alloc: reported like a bad file, not lost
        errors[i] = fmt::format("decode_image: {}: {}", paths[i].string(), e.what());
      } catch (...) {  // nothing may leave a thread: it would end the process
        errors[i] = fmt::format("decode_image: {}: unknown error", paths[i].string());
      }
    }
  };
  std::vector<std::thread> pool;
  try {
    for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  } catch (const std::system_error&) {
    // No more threads to be had: the ones started (and this one) probe every file all the same.
  }
  work();
  for (auto& t : pool) t.join();
  return errors;
}

struct Scanner {
  const ScanOptions& opt;
  Dataset& ds;

  void report(const std::string& line) {
    if (opt.warn) opt.warn(line);
    else std::fprintf(stderr, "warning: %s\n", line.c_str());
  }

  // Probes the candidates' headers and keeps the good ones in order; a bad file either throws
  // (strict: the first in order) or is skipped with a warning.
  void add(const std::vector<Sample>& candidates) {
    std::vector<std::string> errors(candidates.size());
    if (opt.probe) {
      std::vector<fs::path> paths;
      for (const Sample& c : candidates) paths.push_back(c.path);
      errors = probe_all(paths);
    }
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (errors[i].empty()) {
        ds.samples.push_back(candidates[i]);
        continue;
      }
      if (opt.strict) fail("dataset {}: bad image file: {}", ds.root.string(), errors[i]);
      ++ds.skipped;
      report(fmt::format("skipping bad image: {}", errors[i]));
    }
  }

  void summary() {
    if (ds.skipped > 0)
      report(fmt::format("dataset {}: skipped {} bad file(s), kept {}", ds.root.string(), ds.skipped, ds.samples.size()));
  }
};

}  // namespace

Dataset image_folder(const fs::path& root, const ScanOptions& opt) {
  if (!is_folder(root)) fail("ImageFolder: {}: not a directory", root.string());
  Dataset ds;
  ds.root = root;
  std::error_code ec;
  fs::directory_iterator top(root, ec);
  if (ec) fail("ImageFolder: {}: cannot list this folder: {}", root.string(), ec.message());
  for (; top != fs::directory_iterator(); top.increment(ec)) {
    if (ec) fail("ImageFolder: {}: cannot list this folder: {}", root.string(), ec.message());
    if (is_folder(top->path())) ds.classes.push_back(top->path().filename().string());
  }
  std::sort(ds.classes.begin(), ds.classes.end());
  if (ds.classes.empty()) fail("ImageFolder: {}: couldn't find any class folder", root.string());

  std::vector<Sample> candidates;
  for (size_t label = 0; label < ds.classes.size(); ++label) {
    // os.walk(followlinks=True) groups, sorted by directory path, files sorted within each.
    std::map<std::string, std::vector<std::string>> dirs;
    fs::path class_dir = root / ds.classes[label];
    dirs[class_dir.string()];
    walk_tree(class_dir, [&](const fs::path& p, bool is_dir) {
      if (is_dir) dirs[p.string()];
      else dirs[p.parent_path().string()].push_back(p.filename().string());
    });
    for (auto& [dir, files] : dirs) {
      std::sort(files.begin(), files.end());
      for (const std::string& f : files) {
        fs::path p = fs::path(dir) / f;
        if (has_image_extension(p)) candidates.push_back({p, int64_t(label)});
      }
    }
  }
  Scanner sc{opt, ds};
  sc.add(candidates);
  std::vector<bool> has_sample(ds.classes.size(), false);
  for (const Sample& s : ds.samples) has_sample[size_t(s.label)] = true;
  std::vector<std::string> empty_classes;
  for (size_t label = 0; label < ds.classes.size(); ++label)
    if (!has_sample[label]) empty_classes.push_back(ds.classes[label]);
  if (!empty_classes.empty())
    fail("ImageFolder: {}: found no valid file for the classes {} (supported extensions: .jpg, .jpeg, .png, .ppm, "
         ".bmp, .pgm, .tif, .tiff, .webp)",
         root.string(), printable_list(empty_classes));
  sc.summary();
  return ds;
}

Dataset list_file_dataset(const fs::path& list, const fs::path& root, const ScanOptions& opt) {
  std::ifstream in(list);
  if (!in) fail("list dataset: {}: cannot open", list.string());
  Dataset ds;
  ds.root = root;
  std::vector<Sample> candidates;
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t a = line.find_first_not_of(" \t");
    if (a == std::string::npos || line[a] == '#') continue;
    size_t b = line.find_last_not_of(" \t");
    size_t sep = line.find_last_of(" \t", b);
    if (sep == std::string::npos || sep < a)
      fail("list dataset: {}:{}: expected 'relative/path label', got '{}'", list.string(), lineno,
           printable(line));
    std::string_view label_text(line.data() + sep + 1, b - sep);
    int64_t label = -1;
    auto [ptr, err] = std::from_chars(label_text.data(), label_text.data() + label_text.size(), label);
    if (err != std::errc() || ptr != label_text.data() + label_text.size() || label < 0)
      fail("list dataset: {}:{}: label '{}' is not an integer >= 0", list.string(), lineno,
           printable(label_text));
    size_t e = line.find_last_not_of(" \t", sep);
    candidates.push_back({root / line.substr(a, e - a + 1), label});
  }
  Scanner sc{opt, ds};
  sc.add(candidates);
  if (ds.samples.empty()) fail("list dataset: {}: no usable samples", list.string());
  sc.summary();
  return ds;
}

}  // namespace rtune::io
