// Dumps rtune's RandomResizedCrop boxes (and hflip draws) for an HxW image: N lines "i j h w flip".
#include <cstdio>
#include <cstdlib>
#include "io/transforms/random.h"
using namespace rtune::io;
int main(int argc, char** argv) {
  int H = atoi(argv[1]), W = atoi(argv[2]), N = atoi(argv[3]);
  for (int n = 0; n < N; ++n) {
    Rng rng = Rng::for_key(0, 0, uint64_t(n));  // the loader's per-sample stream
    CropBox b = random_resized_crop_params(H, W, rng);
    int flip = rng.bernoulli(0.5);
    printf("%d %d %d %d %d\n", b.top, b.left, b.height, b.width, flip);
  }
}
