// bench_resize: the Pillow-exact bilinear resample the loader runs per training image, alone: a
// 375x500 noise image (the synthetic folder's size), 512 crop boxes drawn by RandomResizedCrop's
// sampling (scale 0.08-1, ratio 3/4-4/3), each resized to 224x224 through resize_into, one thread.
// Prints microseconds per resample (best of the rounds: the VM's noise only ever adds time).
// usage: bench_resize [iterations per round = 4000] [rounds = 5]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "io/transforms/random.h"
#include "io/transforms/resize.h"

using namespace rtune::io;

int main(int argc, char** argv) {
  const int iters = argc > 1 ? std::atoi(argv[1]) : 4000, rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  rtune::Rng rng(1);
  Image img(375, 500);
  for (auto& p : img.pixels) p = uint8_t(rng.next_u64() >> 56);
  std::vector<CropBox> boxes;
  for (int i = 0; i < 512; ++i) boxes.push_back(random_resized_crop_params(375, 500, rng, {0.08, 1.0}, {3.0 / 4, 4.0 / 3}));
  std::vector<uint8_t> out(224 * 224 * 3), scratch;
  unsigned sink = 0;
  double best = 1e30;
  for (int r = 0; r < rounds; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) {
      resize_into(img, 0, 0, boxes[size_t(i) % boxes.size()], 224, 224, {0, 0, 224, 224}, Interp::bilinear, out.data(),
                  scratch);
      sink += out[size_t(i) % out.size()];
    }
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters);
  }
  std::printf("RandomResizedCrop(224) resample of a 375x500 image: %.1f us (best of %d rounds of %d; %u)\n", best * 1e6,
              rounds, iters, sink & 1);
}
