// Writes the loader's output for every sample of a folder (epoch 0) as raw RGB to OUT/<index>.rgb
#include <cstdio>
#include <string>
#include "io/data/dataset.h"
#include "io/data/loader.h"
#include "io/transforms/pipeline.h"
#include "io/transforms/random.h"
using namespace rtune::io;
int main(int argc, char** argv) {
  Dataset ds = image_folder(argv[1]);
  LoaderOptions opt; opt.threads = 1; opt.shuffle = false;
  Loader ld(ds, parse_pipeline(argv[2]), opt);
  for (size_t i = 0; i < ds.samples.size(); ++i) {
    Image im = ld.load_sample(i, 0);
    FILE* f = fopen((std::string(argv[3]) + "/" + std::to_string(i) + ".rgb").c_str(), "wb");
    fwrite(im.pixels.data(), 1, im.pixels.size(), f); fclose(f);
    Rng rng = Rng::for_key(0, 0, i);
    CropBox b = random_resized_crop_params(32, 32, rng);  // the loader's first draw for this sample
    printf("%s %d %d %d %d\n", ds.samples[i].path.c_str(), b.top, b.left, b.height, b.width);
  }
}
