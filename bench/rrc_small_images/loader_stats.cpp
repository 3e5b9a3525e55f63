// rtune's loader (the path `rtune train` takes) on a folder: per output image, the mean pixel value and
// the fraction of pixels > 127 (channel 0), over E epochs. Lines: "mean frac".
#include <cstdio>
#include <cstdlib>
#include "io/data/dataset.h"
#include "io/data/loader.h"
#include "io/transforms/pipeline.h"
using namespace rtune::io;
int main(int argc, char** argv) {
  Dataset ds = image_folder(argv[1]);
  int E = atoi(argv[3]);
  LoaderOptions opt; opt.threads = 1; opt.seed = 0;
  Loader ld(ds, parse_pipeline(argv[2]), opt);
  for (int e = 0; e < E; ++e)
    for (size_t i = 0; i < ds.samples.size(); ++i) {
      Image im = ld.load_sample(i, uint64_t(e));
      double s = 0; int hi = 0, n = 0;
      for (size_t p = 0; p < im.pixels.size(); p += 3) { s += im.pixels[p]; hi += im.pixels[p] > 127; ++n; }
      printf("%.4f %.5f\n", s / n, double(hi) / n);
    }
}
