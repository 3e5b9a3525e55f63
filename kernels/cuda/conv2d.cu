// conv2d forward / backward-data / backward-filter / backward-bias with cuDNN's legacy API
// (torch.nn.functional.conv2d, groups = 1, cross-correlation). Algorithms come from the _v7
// heuristic (cuDNN 9 has no plain Get*Algorithm), the first SUCCESS + deterministic entry, cached
// per shape and layout; the workspace comes from the caching allocator. fp32 runs with
// CUDNN_FMA_MATH (no TF32), so it matches the CPU oracle to ~1e-5; bf16/f16 use tensor cores with
// fp32 compute. The op's layout is its output's: NCHW tensors with a KCRS filter, or NHWC
// (channels_last) tensors with a KRSC filter; inputs in the other layout are copied once.
#include <map>
#include <mutex>
#include <tuple>

#include "kernels/cuda/allocator.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/cudnn_desc.h"
#include "kernels/cuda/handles.h"
#include "kernels/cuda/layout.h"
#include "kernels/cuda/kernel_util.cuh"

namespace rtune::cuda {

namespace {

enum class Dir : int { fwd, bwd_data, bwd_filter };

class ConvDesc {
 public:
  ConvDesc(const Conv2dArgs& a, DType t, const char* op) {
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d_), "{}: cudnnCreateConvolutionDescriptor", op);
    cudnnDataType_t compute = t == DType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(d_, int(a.pad_h), int(a.pad_w), int(a.stride_h), int(a.stride_w),
                                                int(a.dilation_h), int(a.dilation_w), CUDNN_CROSS_CORRELATION, compute),
                "{}: convolution descriptor pad {}x{} stride {}x{} dilation {}x{}", op, a.pad_h, a.pad_w, a.stride_h,
                a.stride_w, a.dilation_h, a.dilation_w);
    cudnnMathType_t math = (t == DType::f32 || t == DType::f64) ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
    CUDNN_CHECK(cudnnSetConvolutionMathType(d_, math), "{}: cudnnSetConvolutionMathType", op);
  }
  ~ConvDesc() { cudnnDestroyConvolutionDescriptor(d_); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
  cudnnConvolutionDescriptor_t get() const { return d_; }

 private:
  cudnnConvolutionDescriptor_t d_ = nullptr;
};

// Everything that changes the algorithm answer.
using AlgoKey = std::tuple<int, int, int, Shape, Shape, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>;
struct AlgoChoice {
  int algo = 0;
  size_t workspace = 0;
};

AlgoKey key_of(Dir d, DType t, MemoryFormat f, const Shape& x, const Shape& w, const Conv2dArgs& a) {
  return {int(d), int(t), int(f), x, w, a.stride_h, a.stride_w, a.pad_h, a.pad_w, a.dilation_h, a.dilation_w};
}

// Picks the first usable entry of a _v7 answer: SUCCESS and deterministic if there is one.
template <class Perf>
int pick(const Perf* perf, int n, const char* op, const std::string& shapes) {
  int first_ok = -1;
  for (int i = 0; i < n; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    if (perf[i].determinism == CUDNN_DETERMINISTIC) return int(perf[i].algo);
    if (first_ok < 0) first_ok = int(perf[i].algo);
  }
  RTUNE_CHECK(first_ok >= 0, "{}: cuDNN offers no algorithm for {}", op, shapes);
  return first_ok;
}

// The cached algorithm of (direction, shapes), querying cuDNN on the first call.
AlgoChoice choose(Dir d, const AlgoKey& key, cudnnTensorDescriptor_t xd, cudnnFilterDescriptor_t wd,
                  cudnnConvolutionDescriptor_t cd, cudnnTensorDescriptor_t yd, const char* op,
                  const std::string& shapes) {
  static std::mutex mu;
  static std::map<AlgoKey, AlgoChoice> cache;
  std::lock_guard lk(mu);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  cudnnHandle_t h = handles().cudnn;
  AlgoChoice c;
  int count = 0, got = 0;
  if (d == Dir::fwd) {
    CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &count), "{} {}", op, shapes);
    std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(size_t(std::max(count, 1)));
    CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, xd, wd, cd, yd, count, &got, perf.data()), "{} {}", op, shapes);
    c.algo = pick(perf.data(), got, op, shapes);
    CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, xd, wd, cd, yd, cudnnConvolutionFwdAlgo_t(c.algo), &c.workspace),
                "{} {}", op, shapes);
  } else if (d == Dir::bwd_data) {
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &count), "{} {}", op, shapes);
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(size_t(std::max(count, 1)));
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, wd, yd, cd, xd, count, &got, perf.data()), "{} {}", op,
                shapes);
    c.algo = pick(perf.data(), got, op, shapes);
    CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(h, wd, yd, cd, xd, cudnnConvolutionBwdDataAlgo_t(c.algo),
                                                             &c.workspace),
                "{} {}", op, shapes);
  } else {
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &count), "{} {}", op, shapes);
    std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(size_t(std::max(count, 1)));
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, xd, yd, cd, wd, count, &got, perf.data()), "{} {}",
                op, shapes);
    c.algo = pick(perf.data(), got, op, shapes);
    CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, xd, yd, cd, wd,
                                                               cudnnConvolutionBwdFilterAlgo_t(c.algo), &c.workspace),
                "{} {}", op, shapes);
  }
  cache.emplace(key, c);
  return c;
}

Storage workspace(size_t bytes) { return bytes ? Storage::allocate(bytes, process_device()) : Storage(); }

// Runs body(out) with `out` = t when t is dense in fmt, else a temporary copied into t afterwards.
std::string shapes_of(const Tensor& a, const Tensor& b, const Tensor& c) {
  return fmt::format("{} / {} -> {}", a.str(), b.str(), c.str());
}

}  // namespace

void conv2d_forward(const Tensor& x0, const Tensor& w0, const Tensor& bias, const Conv2dArgs& a, Tensor& y0) {
  const char* op = "conv2d_forward";
  MemoryFormat fmt = is_dense(y0) ? y0.suggest_memory_format() : MemoryFormat::contiguous;
  Tensor x = dense_in(x0, fmt), w = dense_in(w0, fmt);
  std::string shapes = shapes_of(x0, w0, y0);
  into_layout(y0, fmt, [&](Tensor& y) {
    TensorDesc xd, yd;
    FilterDesc wd;
    xd.set(x, fmt, op);
    yd.set(y, fmt, op);
    wd.set(w, fmt, op);
    ConvDesc cd(a, x.dtype(), op);
    AlgoChoice c = choose(Dir::fwd, key_of(Dir::fwd, x.dtype(), fmt, x.shape(), w.shape(), a), xd.get(), wd.get(),
                          cd.get(), yd.get(), op, shapes);
    Storage ws = workspace(c.workspace);
    Scalars s(x.dtype());
    CUDNN_CHECK(cudnnConvolutionForward(handles().cudnn, s.one(), xd.get(), x.raw_data(), wd.get(), w.raw_data(),
                                        cd.get(), cudnnConvolutionFwdAlgo_t(c.algo), ws.data(), c.workspace, s.zero(),
                                        yd.get(), y.raw_data()),
                "{} {} (algo {}, workspace {} bytes)", op, shapes, c.algo, c.workspace);
    if (bias.defined()) {
      Tensor b = bias.contiguous();
      TensorDesc bd;
      bd.set_dims(cudnn_dtype(b.dtype(), op), 1, int(b.numel()), 1, 1, MemoryFormat::contiguous, op);
      CUDNN_CHECK(cudnnAddTensor(handles().cudnn, s.one(), bd.get(), b.raw_data(), s.one(), yd.get(), y.raw_data()),
                  "{} bias {} onto {}", op, b.str(), y.str());
    }
  });
}

void conv2d_backward_input(const Tensor& gy0, const Tensor& w0, const Conv2dArgs& a, Tensor& gx0) {
  const char* op = "conv2d_backward_input";
  MemoryFormat fmt = is_dense(gx0) ? gx0.suggest_memory_format() : MemoryFormat::contiguous;
  Tensor gy = dense_in(gy0, fmt), w = dense_in(w0, fmt);
  std::string shapes = shapes_of(gy0, w0, gx0);
  into_layout(gx0, fmt, [&](Tensor& gx) {
    TensorDesc dxd, dyd;
    FilterDesc wd;
    dxd.set(gx, fmt, op);
    dyd.set(gy, fmt, op);
    wd.set(w, fmt, op);
    ConvDesc cd(a, gy.dtype(), op);
    AlgoChoice c = choose(Dir::bwd_data, key_of(Dir::bwd_data, gy.dtype(), fmt, gx.shape(), w.shape(), a), dxd.get(),
                          wd.get(), cd.get(), dyd.get(), op, shapes);
    Storage ws = workspace(c.workspace);
    Scalars s(gy.dtype());
    CUDNN_CHECK(cudnnConvolutionBackwardData(handles().cudnn, s.one(), wd.get(), w.raw_data(), dyd.get(), gy.raw_data(),
                                             cd.get(), cudnnConvolutionBwdDataAlgo_t(c.algo), ws.data(), c.workspace,
                                             s.zero(), dxd.get(), gx.raw_data()),
                "{} {} (algo {}, workspace {} bytes)", op, shapes, c.algo, c.workspace);
  });
}

void conv2d_backward_weight(const Tensor& gy0, const Tensor& x0, const Conv2dArgs& a, Tensor& gw0) {
  const char* op = "conv2d_backward_weight";
  // The layout follows the activations (the big tensors); the filter gradient is produced in it.
  const bool any_nhwc = x0.suggest_memory_format() == MemoryFormat::channels_last ||
                        gy0.suggest_memory_format() == MemoryFormat::channels_last;
  MemoryFormat fmt = any_nhwc ? MemoryFormat::channels_last : MemoryFormat::contiguous;
  Tensor gy = dense_in(gy0, fmt), x = dense_in(x0, fmt);
  std::string shapes = shapes_of(gy0, x0, gw0);
  into_layout(gw0, fmt, [&](Tensor& gw) {
    TensorDesc xd, dyd;
    FilterDesc dwd;
    xd.set(x, fmt, op);
    dyd.set(gy, fmt, op);
    dwd.set(gw, fmt, op);
    ConvDesc cd(a, gy.dtype(), op);
    AlgoChoice c = choose(Dir::bwd_filter, key_of(Dir::bwd_filter, gy.dtype(), fmt, x.shape(), gw.shape(), a),
                          xd.get(), dwd.get(), cd.get(), dyd.get(), op, shapes);
    Storage ws = workspace(c.workspace);
    Scalars s(gy.dtype());
    CUDNN_CHECK(cudnnConvolutionBackwardFilter(handles().cudnn, s.one(), xd.get(), x.raw_data(), dyd.get(),
                                               gy.raw_data(), cd.get(), cudnnConvolutionBwdFilterAlgo_t(c.algo),
                                               ws.data(), c.workspace, s.zero(), dwd.get(), gw.raw_data()),
                "{} {} (algo {}, workspace {} bytes)", op, shapes, c.algo, c.workspace);
  });
}

void conv2d_backward_bias(const Tensor& gy0, Tensor& gb) {
  const char* op = "conv2d_backward_bias";
  RTUNE_CHECK(gy0.dim() == 4 && gb.shape() == Shape({gy0.size(1)}), "{}: bias grad {} for output grad {}", op,
              gb.str(), gy0.str());
  MemoryFormat fmt = is_dense(gy0) ? gy0.suggest_memory_format() : MemoryFormat::contiguous;
  Tensor gy = dense_in(gy0, fmt);
  Tensor out = gb.is_contiguous() ? gb : empty(gb.shape(), {gb.dtype(), gb.device()});
  TensorDesc dyd, dbd;
  dyd.set(gy, fmt, op);
  dbd.set_dims(cudnn_dtype(out.dtype(), op), 1, int(out.numel()), 1, 1, MemoryFormat::contiguous, op);
  Scalars s(gy.dtype());
  CUDNN_CHECK(cudnnConvolutionBackwardBias(handles().cudnn, s.one(), dyd.get(), gy.raw_data(), s.zero(), dbd.get(),
                                           out.raw_data()),
              "{} {} -> {}", op, gy.str(), gb.str());
  if (!out.same(gb)) copy(out, gb);
}

}  // namespace rtune::cuda
