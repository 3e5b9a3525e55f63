// Datasets as lists of (file, label): torchvision.datasets.ImageFolder (one class per sub-folder,
// classes sorted by name, files found by os.walk(followlinks=True) in sorted order, kept by
// torchvision's IMG_EXTENSIONS) and a list file of "relative/path label" lines.
// Bad files (empty, not an image, unsupported format, corrupt header) are found at scan time by a
// header probe: skipped with a warning naming the file and reason plus a summary count, or, when
// `strict`, a hard rtune::Error (the first bad file in scan order). The probes read each file's
// first 16 KiB (all of it only when the header lies further) on several threads, since a scan of a
// large dataset on cold storage waits on the disk.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace rtune::io {

struct Sample {
  std::filesystem::path path;
  int64_t label = 0;
};

struct Dataset {
  std::filesystem::path root;
  std::vector<std::string> classes;  // ImageFolder: class names by label; list file: empty
  std::vector<Sample> samples;
  size_t skipped = 0;                // bad files left out by a non-strict scan
  int64_t num_classes() const;
};

struct ScanOptions {
  bool strict = false;      // a bad file is an error instead of a skipped sample
  bool probe = true;        // read each file's header at scan time (off: trust the listing)
  // Receives each warning line; default prints to stderr.
  std::function<void(const std::string&)> warn;
};

// torchvision's IMG_EXTENSIONS, matched case-insensitively on the file name's end.
bool has_image_extension(const std::filesystem::path& p);

Dataset image_folder(const std::filesystem::path& root, const ScanOptions& opt = {});

// Lines "relative/path label" (path may contain spaces; label is the last field, an integer >= 0);
// blank lines and lines starting with '#' are ignored. Paths are relative to `root`.
Dataset list_file_dataset(const std::filesystem::path& list, const std::filesystem::path& root,
                          const ScanOptions& opt = {});

}  // namespace rtune::io
