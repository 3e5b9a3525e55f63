// Fused optimizer updates on the device, multi-tensor style (PyTorch's fused=True / _foreach idea, written
// from scratch): one kernel launch updates up to k{Sgd,Adam,Rmsprop}TensorsPerLaunch parameters
// (cuda_ops.h), whose pointers, sizes and per-parameter hyper-parameters travel in one by-value struct.
// Each parameter keeps the blocks a launch of its own would get (grid_for(n)); block b finds its
// parameter in a prefix table of first blocks and loops grid-stride over that parameter's blocks. Every
// element applies the per-element rules of kernels/update_rules.h (RTUNE_HD functions: the very code
// the CPU runs, PyTorch's single-tensor SGD / Adam / AdamW / RMSprop), so a device step equals the CPU
// step up to the device's rounding of sqrt/division (exact in IEEE: both are correctly rounded) and FMA
// contraction. Per-tensor norms for clip_grad_norm_ reduce in double (tree order) and come back in one
// copy; clamp serves clip_grad_value_.
#include <cmath>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/handles.h"
#include "kernels/cuda/kernel_util.cuh"

namespace rtune::cuda {

namespace {

// Which parameter of a list launch a block works on: parameter t owns blocks
// [first_block[t], first_block[t + 1]) and has n[t] elements.
template <int K>
struct BlockMap {
  int count = 0;
  int32_t first_block[K + 1] = {};
  int64_t n[K] = {};
  RT_HOST_DEVICE int tensor_of(unsigned block) const {
    int t = 0;
    while (t + 1 < count && int64_t(block) >= first_block[t + 1]) ++t;
    return t;
  }
  // Appends a parameter of n elements (n > 0); returns its index.
  int add(int64_t elements) {
    const int t = count++;
    n[t] = elements;
    first_block[t + 1] = first_block[t] + int32_t(grid_for(elements, kThreads).x);
    return t;
  }
  unsigned blocks() const { return unsigned(first_block[count]); }
};

// The grid-stride loop of one parameter over its own blocks: body(i) for each element i of tensor t.
template <int K, class F>
RT_DEVICE inline void for_elements(const BlockMap<K>& map, int t, F&& body) {
  const int64_t first = map.first_block[t], blocks = map.first_block[t + 1] - first, n = map.n[t];
  const int64_t stride = blocks * blockDim.x;
  for (int64_t i = (int64_t(blockIdx.x) - first) * blockDim.x + threadIdx.x; i < n; i += stride) body(i);
}

template <class T>
struct SgdList {
  static constexpr int K = kSgdTensorsPerLaunch;
  BlockMap<K> map;
  T* p[K] = {};
  const T* g[K] = {};
  T* buf[K] = {};  // null when that parameter's momentum == 0
  optim::SgdHyper h[K];
  bool first[K] = {};
};

template <class T>
struct AdamList {
  static constexpr int K = kAdamTensorsPerLaunch;
  BlockMap<K> map;
  T* p[K] = {};
  const T* g[K] = {};
  T* m[K] = {};
  T* v[K] = {};
  T* vmax[K] = {};  // null without amsgrad
  optim::AdamStep s[K];
};

template <class T>
struct RmspropList {
  static constexpr int K = kRmspropTensorsPerLaunch;
  BlockMap<K> map;
  T* p[K] = {};
  const T* g[K] = {};
  T* sq[K] = {};
  T* ga[K] = {};   // null when not centered
  T* buf[K] = {};  // null without momentum
  optim::RmspropHyper h[K];
};

// Kernel parameters are limited to 4 KB; stay well below.
static_assert(sizeof(SgdList<double>) <= 3072 && sizeof(AdamList<double>) <= 3072 &&
              sizeof(RmspropList<double>) <= 3072, "optimizer list struct too large for a kernel argument");

template <class T>
RT_GLOBAL void sgd_many_kernel(SgdList<T> l) {
  const int t = l.map.tensor_of(blockIdx.x);
  T* p = l.p[t];
  const T* g = l.g[t];
  T* buf = l.buf[t];
  const optim::SgdHyper h = l.h[t];
  const bool first = l.first[t];
  for_elements(l.map, t, [&](int64_t i) {
    T dummy{};
    optim::sgd_update(p[i], g[i], buf ? buf[i] : dummy, h, first);
  });
}

template <class T>
RT_GLOBAL void adam_many_kernel(AdamList<T> l) {
  const int t = l.map.tensor_of(blockIdx.x);
  T* p = l.p[t];
  const T* g = l.g[t];
  T* m = l.m[t];
  T* v = l.v[t];
  T* vmax = l.vmax[t];
  const optim::AdamStep s = l.s[t];
  for_elements(l.map, t, [&](int64_t i) {
    T dummy{};
    optim::adam_update(p[i], g[i], m[i], v[i], vmax ? vmax[i] : dummy, s);
  });
}

template <class T>
RT_GLOBAL void rmsprop_many_kernel(RmspropList<T> l) {
  const int t = l.map.tensor_of(blockIdx.x);
  T* p = l.p[t];
  const T* g = l.g[t];
  T* sq = l.sq[t];
  T* ga = l.ga[t];
  T* buf = l.buf[t];
  const optim::RmspropHyper h = l.h[t];
  for_elements(l.map, t, [&](int64_t i) {
    T da{}, db{};
    optim::rmsprop_update(p[i], g[i], sq[i], ga ? ga[i] : da, buf ? buf[i] : db, h);
  });
}

// kind: 0 Σx², 1 Σ|x|, 2 max|x| (NaN wins), 3 Σ|x|^p
template <class T>
RT_GLOBAL void norm_partial_kernel(const T* x, int64_t n, int kind, double p, double* partial) {
  __shared__ double smem[kThreads];
  double acc = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    acc = optim::norm_add(acc, double(load(x[i])), kind, p);
  double r = kind == 2 ? block_max(acc, smem) : block_sum(acc, smem);
  if (threadIdx.x == 0) partial[blockIdx.x] = r;
}
RT_GLOBAL void norm_final_kernel(const double* partial, int64_t parts, int kind, double* out) {
  __shared__ double smem[kThreads];
  double acc = 0;
  for (int64_t i = threadIdx.x; i < parts; i += blockDim.x) acc = kind == 2 ? nan_max(acc, partial[i]) : acc + partial[i];
  double r = kind == 2 ? block_max(acc, smem) : block_sum(acc, smem);
  if (threadIdx.x == 0) *out = r;
}

template <class T>
RT_GLOBAL void clamp_kernel(const T* x, T* y, T lo, T hi, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = optim::clamp_value(x[i], lo, hi);
}

template <class T> T* state_ptr(const char* opt, const char* what, Tensor* s, const Tensor& p, bool needed) {
  if (!needed) return nullptr;
  RTUNE_CHECK(s && s->defined(), "{}: '{}' is missing but this configuration needs it", opt, what);
  RTUNE_CHECK(s->shape() == p.shape() && s->dtype() == p.dtype() && s->is_contiguous() && s->device() == p.device(),
              "{}: '{}' {} does not match the parameter {}", opt, what, s->str(), p.str());
  return dptr<T>(*s);
}
// The parameter's gradient as the kernel reads it (dense); throws on a mismatch with the parameter.
Tensor checked_grad(const char* opt, const Tensor& p, const Tensor& g) {
  RTUNE_CHECK(p.is_contiguous(), "{}: the parameter {} must be contiguous", opt, p.str());
  require_same_shape(opt, p, g);
  require_same_dtype(opt, p, g);
  return g.contiguous();
}

// Runs a list update: every slot is checked and its pointers gathered first (an error leaves every
// parameter untouched), then the non-empty parameters go out List::K per launch.
// fill(list, t, slot, dense_grad) sets parameter t of a list, checking the slot's state.
template <template <class> class List, class T, class Slot, class Fill>
void launch_lists(const char* opt, const std::vector<Slot>& slots, Fill fill, void (*kernel)(List<T>)) {
  std::vector<Tensor> grads;  // dense gradients, alive until the launches are queued
  grads.reserve(slots.size());
  for (const Slot& s : slots) grads.push_back(checked_grad(opt, *s.param, *s.grad));
  std::vector<List<T>> lists(1);
  for (size_t i = 0; i < slots.size(); ++i) {
    const int64_t n = slots[i].param->numel();
    if (n == 0) {  // nothing to update, but the same checks as the CPU backend
      List<T> scratch{};
      fill(scratch, 0, slots[i], grads[i]);
      continue;
    }
    if (lists.back().map.count == List<T>::K) lists.emplace_back();
    List<T>& l = lists.back();
    fill(l, l.map.add(n), slots[i], grads[i]);
  }
  for (const List<T>& l : lists)
    if (l.map.count > 0) launch(kernel, dim3(l.map.blocks()), kThreads, 0, stream(), l);
}

}  // namespace

void sgd_update_many(const std::vector<kernels::SgdSlot>& slots) {
  const char* opt = "sgd_step";
  dispatch_f32_f64(opt, *slots.at(0).param, [&](auto tag) {
    using T = decltype(tag);
    auto fill = [&](SgdList<T>& l, int t, const kernels::SgdSlot& s, const Tensor& g) {
      l.p[t] = dptr<T>(*s.param);
      l.g[t] = dptr<const T>(g);
      l.buf[t] = state_ptr<T>(opt, "momentum_buf", s.momentum_buf, *s.param, s.hyper.momentum != 0.0);
      l.h[t] = s.hyper;
      l.first[t] = s.first_step;
    };
    launch_lists<SgdList, T>(opt, slots, fill, sgd_many_kernel<T>);
  });
}

void adam_update_many(const std::vector<kernels::AdamSlot>& slots) {
  const char* opt = slots.at(0).step.h.decoupled ? "adamw_step" : "adam_step";
  dispatch_f32_f64(opt, *slots.at(0).param, [&](auto tag) {
    using T = decltype(tag);
    auto fill = [&](AdamList<T>& l, int t, const kernels::AdamSlot& s, const Tensor& g) {
      RTUNE_CHECK(s.step.step >= 1, "{}: step must be >= 1 (got {}); use make_adam_step(h, step)", opt, s.step.step);
      l.p[t] = dptr<T>(*s.param);
      l.g[t] = dptr<const T>(g);
      l.m[t] = state_ptr<T>(opt, "exp_avg", s.exp_avg, *s.param, true);
      l.v[t] = state_ptr<T>(opt, "exp_avg_sq", s.exp_avg_sq, *s.param, true);
      l.vmax[t] = state_ptr<T>(opt, "max_exp_avg_sq", s.max_exp_avg_sq, *s.param, s.step.h.amsgrad);
      l.s[t] = s.step;
    };
    launch_lists<AdamList, T>(opt, slots, fill, adam_many_kernel<T>);
  });
}

void rmsprop_update_many(const std::vector<kernels::RmspropSlot>& slots) {
  const char* opt = "rmsprop_step";
  dispatch_f32_f64(opt, *slots.at(0).param, [&](auto tag) {
    using T = decltype(tag);
    auto fill = [&](RmspropList<T>& l, int t, const kernels::RmspropSlot& s, const Tensor& g) {
      l.p[t] = dptr<T>(*s.param);
      l.g[t] = dptr<const T>(g);
      l.sq[t] = state_ptr<T>(opt, "square_avg", s.square_avg, *s.param, true);
      l.ga[t] = state_ptr<T>(opt, "grad_avg", s.grad_avg, *s.param, s.hyper.centered);
      l.buf[t] = state_ptr<T>(opt, "momentum_buf", s.momentum_buf, *s.param, s.hyper.momentum > 0.0);
      l.h[t] = s.hyper;
    };
    launch_lists<RmspropList, T>(opt, slots, fill, rmsprop_many_kernel<T>);
  });
}

namespace {
using optim::norm_kind;

// Per-tensor sums (of squares, |x|, |x|^p) or maxima, in double, left on the device.
Tensor raw_norms(const std::vector<Tensor>& xs, double p) {
  const int kind = norm_kind(p);
  Tensor results = empty({int64_t(xs.size())}, {DType::f64, xs[0].device()});
  Tensor partial = empty({int64_t(kMaxGridBlocks)}, {DType::f64, xs[0].device()});
  for (size_t t = 0; t < xs.size(); ++t) {
    Tensor x = xs[t].contiguous();
    int64_t n = x.numel();
    dim3 grid = grid_for(n, kThreads);
    dispatch_floating("norms", x, [&](auto tag) {
      using T = decltype(tag);
      launch(norm_partial_kernel<T>, grid, kThreads, 0, stream(), dptr<const T>(x), n, kind, p, dptr<double>(partial));
    });
    launch(norm_final_kernel, dim3(1), kThreads, 0, stream(), dptr<const double>(partial), int64_t(grid.x), kind,
           dptr<double>(results) + t);
  }
  return results;
}

// clip_grad_norm_'s coefficient from the raw per-tensor norms, in one thread, by the rules of
// kernels/update_rules.h: each norm finished and rounded to T, combined, the total rounded to T, then
// clip_coef<T>.
template <class T>
RT_GLOBAL void clip_coef_kernel(const double* raw, int64_t count, int kind, double p, double max_norm, T* coef) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  double acc = 0;
  for (int64_t t = 0; t < count; ++t) acc = optim::norm_add(acc, double(T(optim::norm_finish(raw[t], kind, p))), kind, p);
  *coef = optim::clip_coef<T>(double(T(optim::norm_finish(acc, kind, p))), max_norm);
}

template <class T>
RT_GLOBAL void scale_by_kernel(T* x, const T* coef, int64_t n) {
  const T c = *coef;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    x[i] = c * x[i];
}
}  // namespace

std::vector<double> norms(const std::vector<Tensor>& xs, double p) {
  RTUNE_CHECK(p > 0.0, "norms: norm_type must be > 0 or inf, got {}", p);
  if (xs.empty()) return {};
  const int kind = norm_kind(p);
  std::vector<double> out = raw_norms(xs, p).to_vector<double>();
  for (double& v : out) v = optim::norm_finish(v, kind, p);
  return out;
}

void clip_grad_norm(const std::vector<Tensor>& grads, double max_norm, double p) {
  RTUNE_CHECK(p > 0.0, "clip_grad_norm_: norm_type must be > 0 or inf, got {}", p);
  if (grads.empty()) return;
  for (const Tensor& g : grads) {
    require_same_dtype("clip_grad_norm_", grads[0], g);
    RTUNE_CHECK(g.is_contiguous(), "clip_grad_norm_: gradients must be dense, got {}", g.str());
  }
  Tensor raw = raw_norms(grads, p);
  dispatch_f32_f64("clip_grad_norm_", grads[0], [&](auto tag) {
    using T = decltype(tag);
    Tensor coef = empty({1}, {grads[0].dtype(), grads[0].device()});
    launch(clip_coef_kernel<T>, dim3(1), 1, 0, stream(), dptr<const double>(raw), int64_t(grads.size()),
           norm_kind(p), p, max_norm, dptr<T>(coef));
    for (const Tensor& g : grads) {
      const int64_t n = g.numel();
      if (n == 0) continue;
      Tensor gv = g;
      launch(scale_by_kernel<T>, grid_for(n, kThreads), kThreads, 0, stream(), dptr<T>(gv), dptr<const T>(coef), n);
    }
  });
}

void clamp(const Tensor& x0, double lo, double hi, Tensor& y) {
  require_same_shape("clamp", x0, y);
  require_same_dtype("clamp", x0, y);
  RTUNE_CHECK(y.is_contiguous(), "clamp: output must be contiguous, got {}", y.str());
  Tensor x = x0.contiguous();
  int64_t n = y.numel();
  if (n == 0) return;
  dispatch_f32_f64("clamp", y, [&](auto tag) {
    using T = decltype(tag);
    launch(clamp_kernel<T>, grid_for(n, kThreads), kThreads, 0, stream(), dptr<const T>(x), dptr<T>(y), T(lo), T(hi), n);
  });
}

}  // namespace rtune::cuda
