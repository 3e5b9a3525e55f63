// bench_jpeg: whole-image JPEG decoding through the libjpeg API with libjpeg-turbo's own Huffman
// decoder and with rtune's (io/image/jpeg_huffman.cpp), alternating rounds over the same files held
// in memory, one thread. Prints the best microseconds per image of each (the VM's noise only ever
// adds time) and how many files rtune's decoder took (baseline, no restart intervals).
// usage: bench_jpeg DIR [files = 600] [rounds = 5]     (e.g. a bench/make_jpeg_folder.py folder)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "io/image/file_read.h"
#include "io/image/jpeg_huffman.h"

using namespace rtune::io;

namespace {

// Decodes `file` to RGB rows in `rgb` (libjpeg's default error handler: a bad file ends the run).
bool decode(const std::vector<std::byte>& file, bool rtune_huffman, std::vector<uint8_t>& rgb) {
  jpeg_decompress_struct cinfo{};
  jpeg_error_mgr err{};
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(file.data()), static_cast<unsigned long>(file.size()));
  jpeg_read_header(&cinfo, TRUE);
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  const bool took = rtune_huffman && use_rtune_huffman(cinfo);
  const size_t row_bytes = size_t(cinfo.output_width) * 3;
  rgb.resize(row_bytes * cinfo.output_height);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = rgb.data() + row_bytes * cinfo.output_scanline;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_destroy_decompress(&cinfo);
  return took;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_jpeg DIR [files = 600] [rounds = 5]\n");
    return 2;
  }
  const size_t max_files = argc > 2 ? size_t(std::atol(argv[2])) : 600;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 5;
  std::vector<std::filesystem::path> paths;
  for (const auto& e : std::filesystem::recursive_directory_iterator(argv[1]))
    if (e.is_regular_file() && (e.path().extension() == ".jpg" || e.path().extension() == ".jpeg")) paths.push_back(e.path());
  std::sort(paths.begin(), paths.end());
  paths.resize(std::min(paths.size(), max_files));
  if (paths.empty()) {
    std::fprintf(stderr, "bench_jpeg: no .jpg files under %s\n", argv[1]);
    return 1;
  }
  std::vector<std::vector<std::byte>> files(paths.size());
  size_t bytes = 0;
  for (size_t i = 0; i < paths.size(); ++i) read_file(paths[i], files[i]), bytes += files[i].size();
  std::vector<uint8_t> rgb;
  double best[2] = {1e30, 1e30};
  size_t taken = 0;
  for (int r = 0; r < rounds; ++r)
    for (int ours = 0; ours < 2; ++ours) {
      auto t0 = std::chrono::steady_clock::now();
      size_t took = 0;
      for (const auto& f : files) took += decode(f, ours == 1, rgb);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best[ours] = std::min(best[ours], s / double(files.size()));
      if (ours) taken = took;
    }
  std::printf("%zu JPEGs (%.0f KB each on average), whole, RGB, one thread, best of %d rounds:\n", files.size(),
              double(bytes) / double(files.size()) / 1000, rounds);
  std::printf("  libjpeg-turbo's Huffman decoder  %8.1f us/image\n", best[0] * 1e6);
  std::printf("  rtune's Huffman decoder          %8.1f us/image  (%.2fx; it took %zu of the %zu files)\n", best[1] * 1e6,
              best[0] / best[1], taken, files.size());
}
