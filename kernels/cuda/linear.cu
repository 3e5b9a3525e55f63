// linear (torch.nn.functional.linear: y = x wᵀ + b) with cuBLAS. rtune's matrices are row-major;
// cuBLAS is column-major, so each product is issued on the transposes (docs/cuda-libs-semantics.md §8
// table): y = x·wᵀ is gemm(T, N, m=O, n=B, k=I, A=w, B=x). fp32 through cublasSgemm in the default
// math mode (no TF32), f64 through cublasDgemm, bf16/f16 through cublasGemmEx with fp32 compute.
// The bias add and the bias gradient (Σ over rows, in double, fixed order) are own kernels.
#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/handles.h"
#include "kernels/cuda/layout.h"
#include "kernels/cuda/kernel_util.cuh"

namespace rtune::cuda {

namespace {

// C[m×n] (column-major, ldc) = op(A)·op(B), all of x's dtype.
void gemm(const char* op, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const Tensor& A, int64_t lda,
          const Tensor& B, int64_t ldb, Tensor& C, int64_t ldc) {
  RTUNE_CHECK(m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX, "{}: GEMM {}x{}x{} too large for cuBLAS", op, m, n, k);
  cublasHandle_t h = handles().cublas;
  cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (m == 0 || n == 0) return;
  if (k == 0) {  // no terms: C = 0 (cuBLAS' k = 0 result is unverified, so do not rely on it)
    fill(C, 0.0);
    return;
  }
  switch (C.dtype()) {
    case DType::f32: {
      float one = 1.f, zero = 0.f;
      CUBLAS_CHECK(cublasSgemm(h, oa, ob, int(m), int(n), int(k), &one, dptr<const float>(A), int(lda),
                               dptr<const float>(B), int(ldb), &zero, dptr<float>(C), int(ldc)),
                   "{}: sgemm m={} n={} k={} ({} x {} -> {})", op, m, n, k, A.str(), B.str(), C.str());
      return;
    }
    case DType::f64: {
      double one = 1.0, zero = 0.0;
      CUBLAS_CHECK(cublasDgemm(h, oa, ob, int(m), int(n), int(k), &one, dptr<const double>(A), int(lda),
                               dptr<const double>(B), int(ldb), &zero, dptr<double>(C), int(ldc)),
                   "{}: dgemm m={} n={} k={} ({} x {} -> {})", op, m, n, k, A.str(), B.str(), C.str());
      return;
    }
    case DType::bf16:
    case DType::f16: {
      float one = 1.f, zero = 0.f;
      cudaDataType_t t = C.dtype() == DType::bf16 ? CUDA_R_16BF : CUDA_R_16F;
      CUBLAS_CHECK(cublasGemmEx(h, oa, ob, int(m), int(n), int(k), &one, A.raw_data(), t, int(lda), B.raw_data(), t,
                                int(ldb), &zero, C.raw_data(), t, int(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                   "{}: GemmEx m={} n={} k={} ({} x {} -> {})", op, m, n, k, A.str(), B.str(), C.str());
      return;
    }
    default: fail("{}: cuBLAS GEMM on {} tensors is not supported", op, dtype_name(C.dtype()));
  }
}

template <class T>
RT_GLOBAL void add_bias_rows_kernel(T* y, const T* b, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = store<T>(load(y[i]) + load(b[i % cols]));
}

// out[o] = Σ_r gy[r, o], one thread per column, in double.
template <class T>
RT_GLOBAL void column_sum_kernel(const T* gy, int64_t rows, int64_t cols, T* out) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < cols; o += int64_t(gridDim.x) * blockDim.x) {
    double acc = 0;
    for (int64_t r = 0; r < rows; ++r) acc += double(load(gy[r * cols + o]));
    out[o] = store<T>(acc);
  }
}

}  // namespace

void linear_forward(const Tensor& x0, const Tensor& w0, const Tensor& bias, Tensor& y0) {
  const char* op = "linear_forward";
  Tensor x = x0.contiguous(), w = w0.contiguous();
  int64_t N = x.size(0), I = x.size(1), O = w.size(0);
  into_layout(y0, MemoryFormat::contiguous, [&](Tensor& y) {
    gemm(op, true, false, O, N, I, w, I, x, I, y, O);
    if (bias.defined() && N * O > 0) {
      Tensor b = bias.contiguous();
      dispatch_floating(op, y, [&](auto tag) {
        using T = decltype(tag);
        launch(add_bias_rows_kernel<T>, grid_for(N * O, kThreads), kThreads, 0, stream(), dptr<T>(y),
               dptr<const T>(b), N, O);
      });
    }
  });
}

void linear_backward_input(const Tensor& gy0, const Tensor& w0, Tensor& gx0) {
  Tensor gy = gy0.contiguous(), w = w0.contiguous();
  int64_t N = gy.size(0), O = gy.size(1), I = w.size(1);
  into_layout(gx0, MemoryFormat::contiguous,
              [&](Tensor& gx) { gemm("linear_backward_input", false, false, I, N, O, w, I, gy, O, gx, I); });
}

void linear_backward_weight(const Tensor& gy0, const Tensor& x0, Tensor& gw0) {
  Tensor gy = gy0.contiguous(), x = x0.contiguous();
  int64_t N = gy.size(0), O = gy.size(1), I = x.size(1);
  into_layout(gw0, MemoryFormat::contiguous,
              [&](Tensor& gw) { gemm("linear_backward_weight", false, true, I, O, N, x, I, gy, O, gw, I); });
}

void linear_backward_bias(const Tensor& gy0, Tensor& gb0) {
  Tensor gy = gy0.contiguous();
  int64_t N = gy.size(0), O = gy.size(1);
  if (O == 0) return;
  into_layout(gb0, MemoryFormat::contiguous, [&](Tensor& gb) {
    dispatch_floating("linear_backward_bias", gy, [&](auto tag) {
      using T = decltype(tag);
      launch(column_sum_kernel<T>, grid_for(O, kThreads), kThreads, 0, stream(), dptr<const T>(gy), N, O, dptr<T>(gb));
    });
  });
}

}  // namespace rtune::cuda
