// Runs a harness's LLVMFuzzerTestOneInput on every file of the folders given, without libFuzzer: the
// normal build replays the committed seeds and regression inputs (tests/fuzz/<harness>/) as a ctest,
// so a fixed finding stays fixed without clang. A harness fails the run by aborting (a violated
// property, an exception other than rtune::Error); a folder with no input fails it too.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  int total = 0;
  for (int a = 1; a < argc; ++a) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(argv[a]))
      if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    if (files.empty()) {
      std::fprintf(stderr, "no inputs in %s\n", argv[a]);
      return 1;
    }
    for (const fs::path& f : files) {
      std::ifstream in(f, std::ios::binary);
      std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      ++total;
    }
  }
  std::printf("%d inputs replayed\n", total);
  return total > 0 ? 0 : 1;
}
