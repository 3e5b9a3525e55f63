// softmax / log_softmax over dim 1 of an N×C tensor and cross-entropy with class indices and label
// smoothing (torch.nn.functional.cross_entropy, reduction mean or sum), with own kernels in the CPU
// oracle's arithmetic (kernels/cpu/softmax.cpp): the row max in the element type, Σexp and the
// loss terms in double. One block per row with shared-memory tree reductions; the batch loss is a
// second single-block sum of the per-row losses, so results are deterministic. Targets out of range
// are flagged on the device and reported after the kernel (one 4-byte copy back).
#include <cmath>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/handles.h"
#include "kernels/cuda/layout.h"
#include "kernels/cuda/kernel_util.cuh"

namespace rtune::cuda {

namespace {

constexpr int kRowThreads = 128;

unsigned row_blocks(int64_t rows) { return unsigned(std::max<int64_t>(1, std::min<int64_t>(rows, 4096))); }

template <class T>
RT_GLOBAL void log_softmax_kernel(const T* x, T* y, int64_t N, int64_t C, bool exp_out) {
  using A = compute_t<T>;
  __shared__ A smax[kRowThreads];
  __shared__ double ssum[kRowThreads];
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const T* r = x + n * C;
    A m = load(r[0]);
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      A v = load(r[c]);
      m = m < v ? v : m;
    }
    // tree max (std::max semantics of the oracle: a NaN never replaces a number)
    smax[threadIdx.x] = m;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s && smax[threadIdx.x] < smax[threadIdx.x + s]) smax[threadIdx.x] = smax[threadIdx.x + s];
      __syncthreads();
    }
    m = smax[0];
    __syncthreads();
    double s = 0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += exp(double(A(load(r[c]) - m)));
    s = block_sum(s, ssum);
    A lse = m + A(log(s));
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      A v = A(load(r[c]) - lse);
      y[n * C + c] = exp_out ? store<T>(A(exp(v))) : store<T>(v);
    }
  }
}

// gx = y·(gy − Σ gy·y)  (softmax)   or   gx = gy − exp(y)·Σ gy  (log_softmax)
template <class T>
RT_GLOBAL void softmax_backward_kernel(const T* gy, const T* y, T* gx, int64_t N, int64_t C, bool log) {
  __shared__ double ssum[kRowThreads];
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    double acc = 0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
      acc += log ? double(load(gy[n * C + c])) : double(load(gy[n * C + c])) * double(load(y[n * C + c]));
    acc = block_sum(acc, ssum);
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      double g = double(load(gy[n * C + c])), p = double(load(y[n * C + c]));
      gx[n * C + c] = store<T>(log ? g - exp(p) * acc : p * (g - acc));
    }
  }
}

template <class T>
RT_GLOBAL void ce_rows_kernel(const T* lp, const int64_t* target, int64_t N, int64_t C, double ls, double* row_loss,
                              DeviceErrorRecord* err) {
  __shared__ double ssum[kRowThreads];
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    double smooth = 0;
    if (ls > 0) {
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) smooth -= double(load(lp[n * C + c]));
      smooth = block_sum(smooth, ssum) / double(C);
    }
    if (threadIdx.x == 0) {
      int64_t t = target[n];
      if (t < 0 || t >= C) {  // reported at the next fence; the loss becomes NaN, never a plausible value
        if (atomicCAS(&err->row, -1, int(n)) == -1) {
          err->classes = int(C);
          err->target = t;
        }
        row_loss[n] = NAN;
      } else {
        row_loss[n] = (1 - ls) * -double(load(lp[n * C + t])) + ls * smooth;
      }
    }
  }
}

template <class T>
RT_GLOBAL void ce_total_kernel(const double* row_loss, int64_t N, bool mean, T* out) {
  __shared__ double ssum[kRowThreads];
  double acc = 0;
  for (int64_t n = threadIdx.x; n < N; n += blockDim.x) acc += row_loss[n];
  acc = block_sum(acc, ssum);
  if (threadIdx.x == 0) *out = store<T>(mean ? acc / double(N) : acc);
}

template <class T>
RT_GLOBAL void ce_backward_kernel(const T* gloss, const T* lp, const int64_t* target, int64_t N, int64_t C, double ls,
                                  double scale, T* gx) {
  const double g = double(load(*gloss)) * scale;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < N * C; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t n = i / C, c = i % C;
    double q = (c == target[n] ? 1 - ls : 0.0) + ls / double(C);
    gx[i] = store<T>(g * (exp(double(load(lp[i]))) - q));
  }
}

void check_2d(const char* op, const Tensor& x) { RTUNE_CHECK(x.dim() == 2, "{}: expected an N×C tensor, got {}", op, x.str()); }

void run_log_softmax(const char* op, const Tensor& x0, Tensor& y0, bool exp_out) {
  check_2d(op, x0);
  Tensor x = x0.contiguous();
  int64_t N = x.size(0), C = x.size(1);
  if (N == 0 || C == 0) return;
  into_layout(y0, MemoryFormat::contiguous, [&](Tensor& y) {
    dispatch_floating(op, x, [&](auto tag) {
      using T = decltype(tag);
      launch(log_softmax_kernel<T>, dim3(row_blocks(N)), kRowThreads, 0, stream(), dptr<const T>(x), dptr<T>(y), N, C,
             exp_out);
    });
  });
}

void run_softmax_backward(const char* op, const Tensor& gy0, const Tensor& y0, Tensor& gx0, bool log) {
  check_2d(op, y0);
  Tensor gy = gy0.contiguous(), y = y0.contiguous();
  int64_t N = y.size(0), C = y.size(1);
  if (N == 0 || C == 0) return;
  into_layout(gx0, MemoryFormat::contiguous, [&](Tensor& gx) {
    dispatch_floating(op, y, [&](auto tag) {
      using T = decltype(tag);
      launch(softmax_backward_kernel<T>, dim3(row_blocks(N)), kRowThreads, 0, stream(), dptr<const T>(gy),
             dptr<const T>(y), dptr<T>(gx), N, C, log);
    });
  });
}

}  // namespace

void softmax_forward(const Tensor& x, Tensor& y) { run_log_softmax("softmax_forward", x, y, true); }
void log_softmax_forward(const Tensor& x, Tensor& y) { run_log_softmax("log_softmax_forward", x, y, false); }
void softmax_backward(const Tensor& gy, const Tensor& y, Tensor& gx) {
  run_softmax_backward("softmax_backward", gy, y, gx, false);
}
void log_softmax_backward(const Tensor& gy, const Tensor& y, Tensor& gx) {
  run_softmax_backward("log_softmax_backward", gy, y, gx, true);
}

void cross_entropy_forward(const Tensor& logits, const Tensor& target0, double ls, Reduction r, Tensor& loss,
                           Tensor& log_probs) {
  const char* op = "cross_entropy";
  check_2d(op, logits);
  require_dtype("cross_entropy (target)", target0, DType::i64);
  int64_t N = logits.size(0), C = logits.size(1);
  RTUNE_CHECK(target0.dim() == 1 && target0.size(0) == N, "cross_entropy: target {} for logits {}", target0.str(),
              logits.str());
  RTUNE_CHECK(ls >= 0 && ls <= 1, "cross_entropy: label_smoothing {} outside [0, 1]", ls);
  RTUNE_CHECK(log_probs.is_contiguous(), "cross_entropy: log_probs must be contiguous, got {}", log_probs.str());
  Tensor target = target0.contiguous();
  log_softmax_forward(logits, log_probs);
  Tensor row_loss = empty({std::max<int64_t>(N, 1)}, {DType::f64, logits.device()});
  dispatch_floating(op, logits, [&](auto tag) {
    using T = decltype(tag);
    if (N > 0)
      launch(ce_rows_kernel<T>, dim3(row_blocks(N)), kRowThreads, 0, stream(), dptr<const T>(log_probs),
             dptr<const int64_t>(target), N, C, ls, dptr<double>(row_loss), device_error_record());
    launch(ce_total_kernel<T>, dim3(1), kRowThreads, 0, stream(), dptr<const double>(row_loss), N,
           r == Reduction::mean, dptr<T>(loss));
  });
  // No check here: reading the record would make the host wait for the device in mid-step.
}

void cross_entropy_backward(const Tensor& gloss, const Tensor& log_probs0, const Tensor& target0, double ls,
                            Reduction r, Tensor& glogits) {
  const char* op = "cross_entropy_backward";
  Tensor target = target0.contiguous(), lp = log_probs0.contiguous();
  RTUNE_CHECK(gloss.numel() == 1 && gloss.dtype() == lp.dtype(), "{}: grad of the loss must be one {} value, got {}",
              op, dtype_name(lp.dtype()), gloss.str());
  int64_t N = lp.size(0), C = lp.size(1);
  if (N == 0 || C == 0) return;
  double scale = r == Reduction::mean ? 1.0 / double(N) : 1.0;
  into_layout(glogits, MemoryFormat::contiguous, [&](Tensor& gx) {
    dispatch_floating(op, lp, [&](auto tag) {
      using T = decltype(tag);
      launch(ce_backward_kernel<T>, grid_for(N * C, kThreads), kThreads, 0, stream(), dptr<const T>(gloss),
             dptr<const T>(lp), dptr<const int64_t>(target), N, C, ls, scale, dptr<T>(gx));
    });
  });
}

}  // namespace rtune::cuda
