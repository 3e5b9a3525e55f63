// Batch norm (torch.nn.BatchNorm2d / F.batch_norm) with cuDNN's legacy spatial batch norm: training
// forward (batch statistics; saved mean and 1/sqrt(biased var + eps); running statistics moved by
// exponentialAverageFactor = momentum, the variance with the unbiased estimate: the CPU path's
// update), inference forward and the training backward. Mode CUDNN_BATCHNORM_SPATIAL (PyTorch uses
// SPATIAL_PERSISTENT for speed, but notes accuracy losses; parity first). cuDNN has no eval-mode
// backward: that one is an own kernel, one block per channel, reductions in double. Parameters are
// float for f32/bf16/f16 inputs (fp32 statistics in mixed precision) and double for f64. Inputs of
// rank 2 or 3 are viewed as N×C×L×1.
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/cudnn_desc.h"
#include "kernels/cuda/handles.h"
#include "kernels/cuda/layout.h"
#include "kernels/cuda/kernel_util.cuh"

namespace rtune::cuda {

namespace {

// x as a dense 4-d tensor (layout kept when already dense).
Tensor as4d(const Tensor& x, const char* op) {
  RTUNE_CHECK(x.dim() >= 2 && x.dim() <= 4, "{}: expected an N×C[×H[×W]] input, got {}", op, x.str());
  Tensor d = is_dense(x) ? x : x.contiguous();
  if (d.dim() == 4) return d;
  Shape s = d.shape();
  while (s.size() < 4) s.push_back(1);
  return d.contiguous().view(s);
}
// y viewed like as4d (y is dense by the façade's contract, or a temporary is used by the caller).
Tensor out4d(Tensor& y) {
  if (y.dim() == 4) return y;
  Shape s = y.shape();
  while (s.size() < 4) s.push_back(1);
  return y.view(s);
}

DType param_dtype(const Tensor& x) { return x.dtype() == DType::f64 ? DType::f64 : DType::f32; }

// A per-channel parameter as a dense vector of the parameter dtype, or `fill` when undefined.
Tensor param_or(const Tensor& p, int64_t C, DType dt, double fill, const char* op, const char* what) {
  if (!p.defined()) return full({C}, fill, {dt, process_device()});
  RTUNE_CHECK(p.numel() == C, "{}: {} has {} elements for {} channels", op, what, p.numel(), C);
  RTUNE_CHECK(p.dtype() == dt, "{}: {} must be {} for {} input (cuDNN batch norm parameters), got {}", op, what,
              dtype_name(dt), "this", p.str());
  return p.is_contiguous() ? p : p.contiguous();
}

// cuDNN reads epsilon in the backward only to recompute statistics when the saved ones are NULL; we
// always pass the saved mean / invstd (which already contain the forward's eps).
constexpr double kUnusedEps = 1e-5;

// Runs body(o) on a dense 4-d view of y, or on a temporary copied back into y.
template <class F> void dense_output(Tensor& y, MemoryFormat fmt, F&& body) {
  const MemoryFormat layout = is_dense(y) ? y.suggest_memory_format() : (y.dim() == 4 ? fmt : MemoryFormat::contiguous);
  into_layout(y, layout, [&](Tensor& t) {
    Tensor v = out4d(t);
    body(v);
  });
}

// Eval-mode backward: gx = gy·w·invstd; gw = Σ gy·(x−mean)·invstd; gb = Σ gy (one block per channel).
template <class T, class P>
RT_GLOBAL void bn_eval_backward_kernel(const T* gy, Indexer gyi, const T* x, Indexer xi, const P* w, const P* mean,
                                       const P* invstd, T* gx, Indexer gxi, P* gw, P* gb, int64_t C, int64_t M) {
  __shared__ double smem[kThreads];
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    const double m = double(mean[c]), is = double(invstd[c]), wc = w ? double(w[c]) : 1.0;
    double sg = 0, sgx = 0;
    for (int64_t j = threadIdx.x; j < M; j += blockDim.x) {
      // element j of channel c in N×(H·W) order: n = j / HW, position j % HW
      int64_t hw = gyi.size[2] * gyi.size[3], n = j / hw, p = j % hw, h = p / gyi.size[3], q = p % gyi.size[3];
      int64_t lin = ((n * C + c) * gyi.size[2] + h) * gyi.size[3] + q;
      double g = double(load(gy[gyi.offset(lin)]));
      sg += g;
      sgx += g * (double(load(x[xi.offset(lin)])) - m);
      if (gx) gx[gxi.offset(lin)] = store<T>(g * wc * is);
    }
    double tg = block_sum(sg, smem), tgx = block_sum(sgx, smem);
    if (threadIdx.x == 0) {
      if (gw) gw[c] = P(tgx * is);
      if (gb) gb[c] = P(tg);
    }
  }
}

}  // namespace

void batch_norm_forward_train(const Tensor& x0, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                              Tensor& running_var, double momentum, double eps, Tensor& y, Tensor& save_mean,
                              Tensor& save_invstd) {
  const char* op = "batch_norm_forward_train";
  Tensor x = as4d(x0, op);
  int64_t N = x.size(0), C = x.size(1), M = N * x.size(2) * x.size(3);
  RTUNE_CHECK(M > 1, "batch_norm: training needs more than one value per channel, got input {}", x0.str());
  RTUNE_CHECK(running_mean.defined() == running_var.defined(),
              "{}: running_mean and running_var must both be given or both be undefined", op);
  DType pt = param_dtype(x);
  Tensor w = param_or(weight, C, pt, 1.0, op, "weight"), b = param_or(bias, C, pt, 0.0, op, "bias");
  for (auto [t, what] : {std::pair<Tensor*, const char*>{&running_mean, "running_mean"}, {&running_var, "running_var"},
                         {&save_mean, "save_mean"}, {&save_invstd, "save_invstd"}}) {
    if (!t->defined()) continue;
    RTUNE_CHECK(t->numel() == C && t->dtype() == pt && t->is_contiguous(), "{}: {} must be a dense {}[{}], got {}", op,
                what, dtype_name(pt), C, t->str());
  }
  RTUNE_CHECK(save_mean.defined() && save_invstd.defined(), "{}: save_mean and save_invstd are required", op);
  MemoryFormat fmt = x.suggest_memory_format();
  dense_output(y, fmt, [&](Tensor& yv) {
    TensorDesc xd, yd, pd;
    xd.set(x, x.suggest_memory_format(), op);
    yd.set(yv, yv.suggest_memory_format(), op);
    CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(pd.get(), xd.get(), CUDNN_BATCHNORM_SPATIAL), "{} {}", op, x.str());
    Scalars s(x.dtype());
    CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
                    handles().cudnn, CUDNN_BATCHNORM_SPATIAL, s.one(), s.zero(), xd.get(), x.raw_data(), yd.get(),
                    yv.raw_data(), pd.get(), w.raw_data(), b.raw_data(), momentum,
                    running_mean.defined() ? running_mean.raw_data() : nullptr,
                    running_var.defined() ? running_var.raw_data() : nullptr, eps, save_mean.raw_data(),
                    save_invstd.raw_data()),
                "{} {} (momentum {}, eps {})", op, x0.str(), momentum, eps);
  });
}

void batch_norm_forward_eval(const Tensor& x0, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                             const Tensor& running_var, double eps, Tensor& y) {
  const char* op = "batch_norm_forward_eval";
  Tensor x = as4d(x0, op);
  int64_t C = x.size(1);
  RTUNE_CHECK(running_mean.defined() && running_var.defined(), "batch_norm: eval mode needs running statistics");
  DType pt = param_dtype(x);
  Tensor w = param_or(weight, C, pt, 1.0, op, "weight"), b = param_or(bias, C, pt, 0.0, op, "bias");
  Tensor rm = param_or(running_mean, C, pt, 0.0, op, "running_mean");
  Tensor rv = param_or(running_var, C, pt, 1.0, op, "running_var");
  dense_output(y, x.suggest_memory_format(), [&](Tensor& yv) {
    TensorDesc xd, yd, pd;
    xd.set(x, x.suggest_memory_format(), op);
    yd.set(yv, yv.suggest_memory_format(), op);
    CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(pd.get(), xd.get(), CUDNN_BATCHNORM_SPATIAL), "{} {}", op, x.str());
    Scalars s(x.dtype());
    CUDNN_CHECK(cudnnBatchNormalizationForwardInference(handles().cudnn, CUDNN_BATCHNORM_SPATIAL, s.one(), s.zero(),
                                                        xd.get(), x.raw_data(), yd.get(), yv.raw_data(), pd.get(),
                                                        w.raw_data(), b.raw_data(), rm.raw_data(), rv.raw_data(), eps),
                "{} {} (eps {})", op, x0.str(), eps);
  });
}

void batch_norm_backward(const Tensor& gy0, const Tensor& x0, const Tensor& weight, const Tensor& mean,
                         const Tensor& invstd, bool training, Tensor& gx, Tensor& gw, Tensor& gb) {
  const char* op = "batch_norm_backward";
  Tensor x = as4d(x0, op);
  int64_t C = x.size(1);
  MemoryFormat fmt = x.suggest_memory_format();
  Tensor gy = as4d(dense_in(gy0, x0.dim() == 4 ? fmt : MemoryFormat::contiguous), op);
  DType pt = param_dtype(x);
  Tensor w = param_or(weight, C, pt, 1.0, op, "weight");
  Tensor m = param_or(mean, C, pt, 0.0, op, "mean"), is = param_or(invstd, C, pt, 1.0, op, "invstd");
  // cuDNN writes all three gradients: undefined ones go to scratch tensors.
  Tensor gw_out = gw.defined() ? gw : empty({C}, {pt, x.device()});
  Tensor gb_out = gb.defined() ? gb : empty({C}, {pt, x.device()});
  for (auto [t, what] : {std::pair<Tensor*, const char*>{&gw_out, "grad_weight"}, {&gb_out, "grad_bias"}})
    RTUNE_CHECK(t->numel() == C && t->dtype() == pt && t->is_contiguous(), "{}: {} must be a dense {}[{}], got {}", op,
                what, dtype_name(pt), C, t->str());
  auto run = [&](Tensor* gxv) {
    if (!training) {
      dispatch_floating(op, x, [&](auto tag) {
        using T = decltype(tag);
        auto go = [&](auto ptag) {
          using P = decltype(ptag);
          Tensor gxi_t = gxv ? *gxv : x;  // indexer only
          launch(bn_eval_backward_kernel<T, P>, dim3(unsigned(std::min<int64_t>(C, 65535))), kThreads, 0, stream(),
                 dptr<const T>(gy), indexer_of(gy), dptr<const T>(x), indexer_of(x), dptr<const P>(w),
                 dptr<const P>(m), dptr<const P>(is), gxv ? dptr<T>(*gxv) : static_cast<T*>(nullptr),
                 indexer_of(gxi_t), gw.defined() ? dptr<P>(gw_out) : static_cast<P*>(nullptr),
                 gb.defined() ? dptr<P>(gb_out) : static_cast<P*>(nullptr), C, x.size(0) * x.size(2) * x.size(3));
        };
        if (pt == DType::f64) go(double{});
        else go(float{});
      });
      return;
    }
    Tensor scratch;
    Tensor* dx = gxv;
    if (!dx) {
      scratch = empty(x.shape(), {x.dtype(), x.device(), fmt});
      dx = &scratch;
    }
    TensorDesc xd, dyd, dxd, pd;
    xd.set(x, fmt, op);
    dyd.set(gy, gy.suggest_memory_format(), op);
    dxd.set(*dx, dx->suggest_memory_format(), op);
    CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(pd.get(), xd.get(), CUDNN_BATCHNORM_SPATIAL), "{} {}", op, x.str());
    Scalars s(x.dtype());
    CUDNN_CHECK(cudnnBatchNormalizationBackward(handles().cudnn, CUDNN_BATCHNORM_SPATIAL, s.one(), s.zero(), s.one(),
                                                s.zero(), xd.get(), x.raw_data(), dyd.get(), gy.raw_data(), dxd.get(),
                                                dx->raw_data(), pd.get(), w.raw_data(), gw_out.raw_data(),
                                                gb_out.raw_data(), kUnusedEps, m.raw_data(), is.raw_data()),
                "{} {}", op, x0.str());
  };
  if (gx.defined()) dense_output(gx, fmt, [&](Tensor& v) { run(&v); });
  else run(nullptr);
}

}  // namespace rtune::cuda
