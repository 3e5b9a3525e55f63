// Builds throw-away dataset folders for the data_dataset / data_loader tests from fixture images.
#pragma once
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <utility>
#include <span>
#include <string_view>
#include <unistd.h>
#include <string>

#include "tests/data/image_test_util.h"

namespace rtune::test {

struct TempTree {
  std::filesystem::path root;
  explicit TempTree(const std::string& tag) {
    root = std::filesystem::temp_directory_path() / fmt::format("rtune_{}_{}", tag, ::getpid());
    std::filesystem::remove_all(root);
    std::filesystem::create_directories(root);
  }
  ~TempTree() { std::filesystem::remove_all(root); }
  // Copies tests/fixtures/data/decode/<fixture_name> to root/<rel>.
  std::filesystem::path put(const std::string& rel, const std::string& fixture_name) const {
    auto dst = root / rel;
    std::filesystem::create_directories(dst.parent_path());
    std::filesystem::copy_file(fixture("data/decode/" + fixture_name), dst, std::filesystem::copy_options::overwrite_existing);
    return dst;
  }
  // Several put()s: {{rel, fixture_name}, ...}.
  void put(std::initializer_list<std::pair<std::string, std::string>> files) const {
    for (const auto& [rel, name] : files) put(rel, name);
  }
  std::filesystem::path write(const std::string& rel, std::string_view bytes) const {
    auto dst = root / rel;
    std::filesystem::create_directories(dst.parent_path());
    std::ofstream(dst, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    return dst;
  }
  std::filesystem::path write(const std::string& rel, std::span<const std::byte> bytes) const {
    return write(rel, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  }
};

}  // namespace rtune::test
