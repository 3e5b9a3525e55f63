// CPU micro-benchmark of conv2d forward / backward-input / backward-weight at ResNet-18 layer shapes
// (224×224 input), float32. Prints GFLOP/s (2·MACs per second). Usage: bench_conv2d_cpu [batch] [reps]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <omp.h>
#include "engine/rng.h"
#include "kernels/ops.h"

using namespace rtune;

namespace {
struct Layer {
  const char* name;
  int64_t C, H, K, R, stride, pad;
};
template <class F> double best_seconds(int reps, F&& f) {
  f();  // warm-up: first-touch allocations
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}
}  // namespace

int main(int argc, char** argv) {
  int64_t N = argc > 1 ? std::atoll(argv[1]) : 8;
  int reps = argc > 2 ? std::atoi(argv[2]) : 3;
  const Layer layers[] = {
      {"conv1 7x7/2 3->64 @224", 3, 224, 64, 7, 2, 3},   {"layer1 3x3 64->64 @56", 64, 56, 64, 3, 1, 1},
      {"layer2 3x3/2 64->128 @56", 64, 56, 128, 3, 2, 1}, {"layer2 3x3 128->128 @28", 128, 28, 128, 3, 1, 1},
      {"layer2 down 1x1/2 64->128", 64, 56, 128, 1, 2, 0}, {"layer3 3x3 256->256 @14", 256, 14, 256, 3, 1, 1},
      {"layer4 3x3 512->512 @7", 512, 7, 512, 3, 1, 1},
  };
  std::printf("rtune conv2d CPU benchmark: float32, batch %lld, %d OpenMP threads, best of %d\n", (long long)N,
              omp_get_max_threads(), reps);
  std::printf("%-28s %10s %10s %10s   (GFLOP/s)\n", "layer", "forward", "bwd-input", "bwd-weight");
  Rng rng(1);
  double total_flop = 0, total_s = 0;
  for (const Layer& l : layers) {
    kernels::Conv2dArgs a{l.stride, l.stride, l.pad, l.pad, 1, 1};
    Tensor x = randn({N, l.C, l.H, l.H}, rng), w = randn({l.K, l.C, l.R, l.R}, rng);
    Shape ys = kernels::conv2d_out_shape(x.shape(), w.shape(), a);
    Tensor y = empty(ys), gy = randn(ys, rng), gx = empty(x.shape()), gw = empty(w.shape());
    double flop = 2.0 * double(ys[0] * ys[1] * ys[2] * ys[3]) * double(l.C * l.R * l.R);
    double tf = best_seconds(reps, [&] { kernels::conv2d_forward(x, w, Tensor(), a, y); });
    double ti = best_seconds(reps, [&] { kernels::conv2d_backward_input(gy, w, a, gx); });
    double tw = best_seconds(reps, [&] { kernels::conv2d_backward_weight(gy, x, a, gw); });
    std::printf("%-28s %10.1f %10.1f %10.1f\n", l.name, flop / tf * 1e-9, flop / ti * 1e-9, flop / tw * 1e-9);
    total_flop += 3 * flop;
    total_s += tf + ti + tw;
  }
  std::printf("%-28s %10.1f GFLOP/s over all passes\n", "overall", total_flop / total_s * 1e-9);
}
