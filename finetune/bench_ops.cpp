#include "finetune/bench_ops.h"
#include <chrono>
#include <omp.h>
#include <fmt/format.h>
#include "engine/autograd.h"
#include "engine/functional.h"
#include "engine/nn/autocast.h"
#include "engine/optim/optimizer.h"
#include "finetune/data_parallel.h"
#include "finetune/freeze.h"
#include "kernels/dist/comm.h"
#include "kernels/ops.h"
#include "models/resnet.h"

namespace rtune::finetune {

namespace {
double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Makes sure queued device work is finished before a clock is read (a host copy of one element).
void sync(const Tensor& t) { (void)t.reshape({-1}).narrow(0, 0, 1).cpu(); }

template <class F> double best_seconds(int reps, const Tensor& probe, F&& f) {
  f();
  sync(probe);
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    double t0 = now_s();
    f();
    sync(probe);
    best = std::min(best, now_s() - t0);
  }
  return best;
}
}  // namespace

void bench_conv(int64_t N, int reps, Device dev, bool bf16_products, const std::function<void(const std::string&)>& out) {
  struct Layer {
    const char* name;
    int64_t C, H, K, R, stride, pad;
  };
  const Layer layers[] = {
      {"conv1 7x7/2 3->64 @224", 3, 224, 64, 7, 2, 3},   {"layer1 3x3 64->64 @56", 64, 56, 64, 3, 1, 1},
      {"layer2 3x3/2 64->128 @56", 64, 56, 128, 3, 2, 1}, {"layer2 3x3 128->128 @28", 128, 28, 128, 3, 1, 1},
      {"layer2 down 1x1/2 64->128", 64, 56, 128, 1, 2, 0}, {"layer3 3x3 256->256 @14", 256, 14, 256, 3, 1, 1},
      {"layer4 3x3 512->512 @7", 512, 7, 512, 3, 1, 1},
  };
  RTUNE_CHECK(!bf16_products || dev.is_cpu(), "bench conv --precision bf16: a CPU mode (on CUDA, bf16 runs "
              "through bf16 tensors: rtune bench train --precision bf16)");
  out(fmt::format("rtune conv2d benchmark: float32 tensors{} on {}, batch {}, {} OpenMP threads, best of {}",
                  bf16_products ? " with bf16 products" : "", dev.str(), N, omp_get_max_threads(), reps));
  out(fmt::format("{:<28} {:>10} {:>10} {:>10}   (GFLOP/s)", "layer", "forward", "bwd-input", "bwd-weight"));
  Rng rng(1);
  double total_flop = 0, total_s = 0;
  TensorOptions o{DType::f32, dev};
  for (const Layer& l : layers) {
    kernels::Conv2dArgs a{l.stride, l.stride, l.pad, l.pad, 1, 1};
    a.bf16_products = bf16_products;
    Tensor x = randn({N, l.C, l.H, l.H}, rng, o), w = randn({l.K, l.C, l.R, l.R}, rng, o);
    Shape ys = kernels::conv2d_out_shape(x.shape(), w.shape(), a);
    Tensor y = empty(ys, o), gy = randn(ys, rng, o), gx = empty(x.shape(), o), gw = empty(w.shape(), o);
    double flop = 2.0 * double(ys[0] * ys[1] * ys[2] * ys[3]) * double(l.C * l.R * l.R);
    double tf = best_seconds(reps, y, [&] { kernels::conv2d_forward(x, w, Tensor(), a, y); });
    double ti = best_seconds(reps, gx, [&] { kernels::conv2d_backward_input(gy, w, a, gx); });
    double tw = best_seconds(reps, gw, [&] { kernels::conv2d_backward_weight(gy, x, a, gw); });
    out(fmt::format("{:<28} {:>10.1f} {:>10.1f} {:>10.1f}", l.name, flop / tf * 1e-9, flop / ti * 1e-9,
                    flop / tw * 1e-9));
    total_flop += 3 * flop;
    total_s += tf + ti + tw;
  }
  out(fmt::format("{:<28} {:>10.1f} GFLOP/s over all passes", "overall", total_flop / total_s * 1e-9));
}

namespace {
// What bench train and bench infer share: the model on the device, a synthetic batch, and the timing
// loop around one `step` (which leaves in `probe` a tensor its last kernel writes).
struct ModelBench {
  const ModelBenchOptions& o;
  int ranks;  // data-parallel train: the global batch is ranks x o.batch
  nn::Precision precision;
  models::ResNet model;
  Tensor x, y;
  explicit ModelBench(const ModelBenchOptions& opt)
      : o(opt), ranks(1), precision(nn::parse_precision(opt.precision, opt.device)), model({opt.arch, opt.width, opt.classes}) {
    if (o.threads > 0) omp_set_num_threads(o.threads);
    model.to(o.device);
    Rng rng(0);
    x = randn({o.batch, 3, o.input, o.input}, rng, {DType::f32, o.device});
    std::vector<int64_t> labels(size_t(o.batch));
    for (auto& l : labels) l = rng.randint(0, o.classes);
    y = from_vector_i64(labels, {o.batch}).to(o.device);
  }
  Tensor forward() {
    nn::Autocast autocast(precision, o.device);  // rtune train's compute mode (nn::compute_mode_for)
    return model.forward(x);
  }
  std::string header(const char* what, const char* mode) const {
    return fmt::format("rtune {} benchmark: {} width {} on {}, batch {} at {} px, {}, {}, {} OpenMP threads", what,
                       o.arch, o.width, o.device.str(), o.batch, o.input, nn::precision_name(precision), mode,
                       omp_get_max_threads());
  }
  // Warm-up steps, then timed steps: prints ms/step, img/s and (CUDA) the peak device memory.
  template <class Step>
  ModelBenchResult timed(Step&& step, Tensor& probe, const std::function<std::string()>& tail,
                        const std::function<void(const std::string&)>& out) {
    for (int i = 0; i < o.warmup; ++i) step();
    if (probe.defined()) sync(probe);  // with --warmup 0 no step has run yet
    kernels::reset_device_peak(o.device);
    const uint64_t mallocs_before = kernels::device_memory_stats(o.device).device_mallocs;
    double t0 = now_s();
    for (int i = 0; i < o.steps; ++i) step();
    sync(probe);
    double dt = now_s() - t0;
    ModelBenchResult r;
    r.step_ms = dt / o.steps * 1e3;
    r.img_per_s = double(o.batch) * ranks * o.steps / dt;
    out(fmt::format("{} warm-up + {} timed steps: {:.1f} ms/step, {:.1f} img/s{}{}", o.warmup, o.steps, r.step_ms,
                    r.img_per_s, ranks > 1 ? fmt::format(" over {} ranks", ranks) : "", tail()));
    if (o.device.is_cuda()) {
      const kernels::DeviceMemoryStats m = kernels::device_memory_stats(o.device);
      r.peak_device_bytes = double(m.peak_in_use_bytes);
      out(fmt::format("device memory: peak {:.1f} MiB held by tensors during the timed steps; {} device allocations in them",
                      r.peak_device_bytes / double(1 << 20), m.device_mallocs - mallocs_before));
    }
    return r;
  }
};
}  // namespace

ModelBenchResult bench_train(const ModelBenchOptions& o, const std::function<void(const std::string&)>& out_all) {
  // Under mpirun each rank trains on its own device and the gradients are averaged as in `rtune train`
  // (NCCL buckets during the backward on GPU ranks, one MPI all-reduce on CPU ranks); rank 0 reports the
  // global img/s.
  dist::Comm& comm = dist::world();
  const auto out = [&](const std::string& line) { if (comm.rank() == 0) out_all(line); };
  ModelBench b(o);
  b.ranks = comm.size();
  b.model.train();
  FreezeSpec spec;
  spec.kind = o.freeze_backbone ? FreezeSpec::Kind::backbone : FreezeSpec::Kind::none;
  const FreezeResult frozen = apply_freeze(b.model, spec, o.frozen_bn_eval ? FrozenBN::eval : FrozenBN::train);
  std::vector<Tensor*> trainable;
  for (auto& [name, p] : b.model.named_parameters())
    if (p->requires_grad()) trainable.push_back(p);
  optim::ParamGroup g;
  g.name = "all";
  g.params = trainable;
  g.lr = 1e-3;
  g.momentum = 0.9;
  optim::Adam opt({g});
  opt.reserve_state();
  GradientAverager grads(comm, DType::f32, o.device);
  grads.set_params(trainable);
  Tensor loss;
  auto step = [&] {
    opt.zero_grad();
    Tensor logits = train_forward(b.model, b.x, frozen, b.precision, o.device).logits;
    loss = cross_entropy(cast(logits, DType::f32), b.y);
    {
      LeafGradHook buckets(grads.on_gradient());
      loss.backward();
    }
    if (comm.size() > 1) grads.average(loss);
    opt.step();
  };
  out(b.header("train", !o.freeze_backbone ? "all layers trained"
                        : frozen.backbone_as_inference ? "backbone frozen (fc trained), frozen BatchNorm in eval mode"
                                           : "backbone frozen (fc trained), BatchNorm in train mode"));
  if (comm.size() > 1)
    out(fmt::format("{} ranks, batch {} each (global batch {}); gradients: {}", comm.size(), o.batch,
                    o.batch * comm.size(), grads.describe()));
  return b.timed(step, loss, [&] { return fmt::format(" (last loss {:.4f})", loss.cpu().item<double>()); }, out);
}

ModelBenchResult bench_infer(const ModelBenchOptions& o, const std::function<void(const std::string&)>& out) {
  ModelBench b(o);
  b.model.eval();
  NoGradGuard no_grad;
  Tensor logits;
  out(b.header("infer", "eval mode, no grad"));
  return b.timed([&] { logits = b.forward(); }, logits, [] { return std::string(); }, out);
}

}  // namespace rtune::finetune
