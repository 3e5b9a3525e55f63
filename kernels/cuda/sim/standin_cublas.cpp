// cuBLAS 13.1 stand-in: handle, stream, workspace and math mode calls, and column-major GEMM
// (cublasSgemm_v2, cublasDgemm_v2, cublasGemmEx, cublasSgemmStridedBatched) per
// docs/cuda-libs-semantics.md §8 and §12: C = alpha*op(A)*op(B) + beta*C, accumulated in double, C not
// read when beta == 0, rows of C between m and ldc untouched. Reduced-precision modes are emulated by
// rounding the inputs: TF32 under CUBLAS_TF32_TENSOR_OP_MATH / COMPUTE_32F_FAST_TF32, bf16 under
// FAST_16BF, fp16 under FAST_16F, CUBLAS_TENSOR_OP_MATH or a *_TENSOR_OP algo with fp32 data.
#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>

#include "kernels/cuda/sim/standin.h"

using namespace rtune::sim::standin;
namespace detail = rtune::sim::detail;

namespace {

std::mutex g_mu;
std::set<const cublasContext*> g_handles;

bool live(const cublasContext* h) {
  if (!h) return false;
  std::lock_guard lock(g_mu);
  return g_handles.count(h) != 0;
}

enum class Round { none, tf32, bf16, f16 };

const char* round_name(Round r) {
  return r == Round::tf32 ? "tf32" : r == Round::bf16 ? "bf16" : r == Round::f16 ? "fp16" : "exact";
}

double round_input(double v, Round r) {
  switch (r) {
    case Round::none: return v;
    case Round::bf16: return bf16_to_float(float_to_bf16(float(v)));
    case Round::f16: return half_to_float(float_to_half(float(v)));
    case Round::tf32: {
      float f = float(v);
      uint32_t u;
      std::memcpy(&u, &f, 4);
      if ((u & 0x7f800000u) == 0x7f800000u) return v;
      u += 0xfffu + ((u >> 13) & 1u);
      u &= ~0x1fffu;
      std::memcpy(&f, &u, 4);
      return f;
    }
  }
  return v;
}

bool tf32_allowed() {
  const char* env = std::getenv("NVIDIA_TF32_OVERRIDE");
  return !(env && std::strcmp(env, "0") == 0);
}

Elem elem_of_cuda(cudaDataType_t t) {
  switch (t) {
    case CUDA_R_32F: return Elem::f32;
    case CUDA_R_64F: return Elem::f64;
    case CUDA_R_16F: return Elem::f16;
    case CUDA_R_16BF: return Elem::bf16;
    default: return Elem::none;
  }
}

const char* elem_name(Elem e) {
  switch (e) {
    case Elem::f32: return "f32";
    case Elem::f64: return "f64";
    case Elem::f16: return "f16";
    case Elem::bf16: return "bf16";
    default: return "?";
  }
}

struct Gemm {
  cublasOperation_t ta, tb;
  int m, n, k;
  const void *A, *B;
  void* C;
  int lda, ldb, ldc;
  long long sa = 0, sb = 0, sc = 0;
  int batch = 1;
  Elem ea, eb, ec;
  double alpha, beta;
  Round round = Round::none;
  int algo = CUBLAS_GEMM_DEFAULT;
};

bool op_ok(cublasOperation_t t) { return t == CUBLAS_OP_N || t == CUBLAS_OP_T || t == CUBLAS_OP_C; }

// The argument checks of cublas<t>gemm (§8): INVALID_VALUE for each documented misuse.
cublasStatus_t check_args(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void* alpha,
                          int lda, int ldb, const void* beta, const void* C, int ldc, int batch) {
  if (!op_ok(ta) || !op_ok(tb)) return CUBLAS_STATUS_INVALID_VALUE;
  if (m < 0 || n < 0 || k < 0 || batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (lda < std::max(1, ta == CUBLAS_OP_N ? m : k)) return CUBLAS_STATUS_INVALID_VALUE;
  if (ldb < std::max(1, tb == CUBLAS_OP_N ? k : n)) return CUBLAS_STATUS_INVALID_VALUE;
  if (ldc < std::max(1, m)) return CUBLAS_STATUS_INVALID_VALUE;
  if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
  if (!C && m > 0 && n > 0 && batch > 0) return CUBLAS_STATUS_INVALID_VALUE;
  return CUBLAS_STATUS_SUCCESS;
}

// Validates one strided-batched column-major operand: rows x cols per matrix with leading dim ld.
void check_matrix(const void* p, Elem e, int rows, int cols, int ld, long long stride, int batch, const char* what) {
  if (rows <= 0 || cols <= 0 || batch <= 0) return;
  const int64_t one = int64_t(cols - 1) * ld + rows;
  const int64_t last = int64_t(batch - 1) * stride;
  const int64_t lo = std::min<int64_t>(0, last), hi = std::max<int64_t>(0, last) + one;
  const size_t es = elem_bytes(e);
  check_bytes(static_cast<const char*>(p) + lo * int64_t(es), size_t(hi - lo) * es, what);
}

cublasStatus_t run(const char* fn, cublasContext* h, const Gemm& g) {
  detail::log_call(fn, fmt::format("{}{} m {} n {} k {} lda {} ldb {} ldc {} A {} B {} C {} inputs {} algo {} batch {} "
                                   "strides {},{},{} alpha {} beta {}",
                                   g.ta == CUBLAS_OP_N ? 'N' : 'T', g.tb == CUBLAS_OP_N ? 'N' : 'T', g.m, g.n, g.k,
                                   g.lda, g.ldb, g.ldc, elem_name(g.ea), elem_name(g.eb), elem_name(g.ec),
                                   round_name(g.round), g.algo, g.batch, g.sa, g.sb, g.sc, g.alpha, g.beta));
  if (g.m == 0 || g.n == 0 || g.batch == 0) return CUBLAS_STATUS_SUCCESS;  // quick return
  if (h->workspace_dropped_by_stream)
    detail::lint(fmt::format("{}: cublasSetStream reset the user workspace; call cublasSetWorkspace again", fn));
  if (g.k > 0 && (!g.A || !g.B)) detail::lint(fmt::format("{}: A or B is NULL with k > 0", fn));
  const bool na = g.ta == CUBLAS_OP_N, nb = g.tb == CUBLAS_OP_N;
  if (g.k > 0) {
    check_matrix(g.A, g.ea, na ? g.m : g.k, na ? g.k : g.m, g.lda, g.sa, g.batch, fn);
    check_matrix(g.B, g.eb, nb ? g.k : g.n, nb ? g.n : g.k, g.ldb, g.sb, g.batch, fn);
  }
  check_matrix(g.C, g.ec, g.m, g.n, g.ldc, g.sc, g.batch, fn);
  for (int b = 0; b < g.batch; ++b) {
    const int64_t oa = int64_t(b) * g.sa, ob = int64_t(b) * g.sb, oc = int64_t(b) * g.sc;
#pragma omp parallel for schedule(static)
    for (int j = 0; j < g.n; ++j)
      for (int i = 0; i < g.m; ++i) {
        double acc = 0;
        for (int l = 0; l < g.k; ++l) {
          const double a = load(g.A, oa + (na ? i + int64_t(l) * g.lda : l + int64_t(i) * g.lda), g.ea);
          const double bv = load(g.B, ob + (nb ? l + int64_t(j) * g.ldb : j + int64_t(l) * g.ldb), g.eb);
          acc += round_input(a, g.round) * round_input(bv, g.round);
        }
        const int64_t o = oc + i + int64_t(j) * g.ldc;
        store(g.C, o, g.ec, g.beta == 0.0 ? g.alpha * acc : g.alpha * acc + g.beta * load(g.C, o, g.ec));
      }
  }
  return CUBLAS_STATUS_SUCCESS;
}

// Input rounding of an fp32 GEMM under the handle's math mode (Sgemm, GemmEx COMPUTE_32F).
Round fp32_round(const cublasContext* h) {
  const int base = int(h->math) & 0xf;
  if (base == CUBLAS_TENSOR_OP_MATH) return Round::f16;  // "same effect as CUBLAS_COMPUTE_32F_FAST_16F"
  if (base == CUBLAS_TF32_TENSOR_OP_MATH && tf32_allowed()) return Round::tf32;
  return Round::none;
}

}  // namespace

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
  *handle = new cublasContext;
  std::lock_guard lock(g_mu);
  g_handles.insert(*handle);
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  {
    std::lock_guard lock(g_mu);
    if (!handle || g_handles.erase(handle) == 0) return CUBLAS_STATUS_NOT_INITIALIZED;
  }
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId) {
  if (!live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = streamId;
  if (handle->workspace) handle->workspace_dropped_by_stream = true;  // reset to the default pool [DOC-BLAS]
  handle->workspace = nullptr;
  handle->workspace_bytes = 0;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t* streamId) {
  if (!live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!streamId) return CUBLAS_STATUS_INVALID_VALUE;
  *streamId = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace, size_t workspaceSizeInBytes) {
  if (!live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (reinterpret_cast<uintptr_t>(workspace) % 256 != 0)
    detail::lint(fmt::format("cublasSetWorkspace: workspace {} is not 256-byte aligned", workspace));
  if (workspace && workspaceSizeInBytes) check_bytes(workspace, workspaceSizeInBytes, "cublasSetWorkspace workspace");
  handle->workspace = workspace;
  handle->workspace_bytes = workspaceSizeInBytes;
  handle->workspace_dropped_by_stream = false;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (!live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  const int m = int(mode);
  const int base = m & ~int(CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
  if (m < 0 || (base != CUBLAS_DEFAULT_MATH && base != CUBLAS_TENSOR_OP_MATH && base != CUBLAS_PEDANTIC_MATH &&
                base != CUBLAS_TF32_TENSOR_OP_MATH && base != CUBLAS_FP32_EMULATED_BF16X9_MATH &&
                base != CUBLAS_FP64_EMULATED_FIXEDPOINT_MATH))
    return CUBLAS_STATUS_INVALID_VALUE;
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode) {
  if (!live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->math;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                              int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                              const float* beta, float* C, int ldc) {
  if (!live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (cublasStatus_t st = check_args(transa, transb, m, n, k, alpha, lda, ldb, beta, C, ldc, 1); st) return st;
  return run("cublasSgemm_v2", handle,
             Gemm{transa, transb, m, n, k, A, B, C, lda, ldb, ldc, 0, 0, 0, 1, Elem::f32, Elem::f32, Elem::f32,
                  *alpha, *beta, fp32_round(handle)});
}

cublasStatus_t cublasDgemm_v2(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                              int k, const double* alpha, const double* A, int lda, const double* B, int ldb,
                              const double* beta, double* C, int ldc) {
  if (!live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (cublasStatus_t st = check_args(transa, transb, m, n, k, alpha, lda, ldb, beta, C, ldc, 1); st) return st;
  return run("cublasDgemm_v2", handle,
             Gemm{transa, transb, m, n, k, A, B, C, lda, ldb, ldc, 0, 0, 0, 1, Elem::f64, Elem::f64, Elem::f64,
                  *alpha, *beta});
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                         int m, int n, int k, const float* alpha, const float* A, int lda,
                                         long long int strideA, const float* B, int ldb, long long int strideB,
                                         const float* beta, float* C, int ldc, long long int strideC, int batchCount) {
  if (!live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (cublasStatus_t st = check_args(transa, transb, m, n, k, alpha, lda, ldb, beta, C, ldc, batchCount); st)
    return st;
  return run("cublasSgemmStridedBatched", handle,
             Gemm{transa, transb, m, n, k, A, B, C, lda, ldb, ldc, strideA, strideB, strideC, batchCount, Elem::f32,
                  Elem::f32, Elem::f32, *alpha, *beta, fp32_round(handle)});
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void* alpha, const void* A, cudaDataType Atype, int lda, const void* B,
                            cudaDataType Btype, int ldb, const void* beta, void* C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
  if (!live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (cublasStatus_t st = check_args(transa, transb, m, n, k, alpha, lda, ldb, beta, C, ldc, 1); st) return st;
  const int al = int(algo);
  if (!(al == CUBLAS_GEMM_DEFAULT || (al >= CUBLAS_GEMM_ALGO0 && al <= CUBLAS_GEMM_ALGO23) ||
        (al >= CUBLAS_GEMM_DEFAULT_TENSOR_OP && al <= CUBLAS_GEMM_ALGO15_TENSOR_OP) || al == CUBLAS_GEMM_AUTOTUNE))
    return CUBLAS_STATUS_NOT_SUPPORTED;
  // Allowed (A, B, C) per compute type (§8 table); everything else is NOT_SUPPORTED.
  const auto is = [&](cudaDataType_t a, cudaDataType_t b, cudaDataType_t c) {
    return Atype == a && Btype == b && Ctype == c;
  };
  Round round = Round::none;
  double a = 0, b = 0;
  switch (computeType) {
    case CUBLAS_COMPUTE_16F:
    case CUBLAS_COMPUTE_16F_PEDANTIC:
      if (!is(CUDA_R_16F, CUDA_R_16F, CUDA_R_16F)) return CUBLAS_STATUS_NOT_SUPPORTED;
      a = half_to_float(*static_cast<const uint16_t*>(alpha));  // scale type is half
      b = half_to_float(*static_cast<const uint16_t*>(beta));
      break;
    case CUBLAS_COMPUTE_32F:
    case CUBLAS_COMPUTE_32F_PEDANTIC:
      if (!is(CUDA_R_32F, CUDA_R_32F, CUDA_R_32F) && !is(CUDA_R_16BF, CUDA_R_16BF, CUDA_R_16BF) &&
          !is(CUDA_R_16BF, CUDA_R_16BF, CUDA_R_32F) && !is(CUDA_R_16F, CUDA_R_16F, CUDA_R_16F) &&
          !is(CUDA_R_16F, CUDA_R_16F, CUDA_R_32F))
        return CUBLAS_STATUS_NOT_SUPPORTED;
      if (Atype == CUDA_R_32F && computeType == CUBLAS_COMPUTE_32F) round = fp32_round(handle);
      break;
    case CUBLAS_COMPUTE_32F_FAST_16F:
    case CUBLAS_COMPUTE_32F_FAST_16BF:
    case CUBLAS_COMPUTE_32F_FAST_TF32:
    case CUBLAS_COMPUTE_32F_EMULATED_16BFX9:
      if (!is(CUDA_R_32F, CUDA_R_32F, CUDA_R_32F)) return CUBLAS_STATUS_NOT_SUPPORTED;
      round = computeType == CUBLAS_COMPUTE_32F_FAST_16F    ? Round::f16
              : computeType == CUBLAS_COMPUTE_32F_FAST_16BF ? Round::bf16
              : computeType == CUBLAS_COMPUTE_32F_FAST_TF32 ? (tf32_allowed() ? Round::tf32 : Round::none)
                                                            : Round::none;
      break;
    case CUBLAS_COMPUTE_64F:
    case CUBLAS_COMPUTE_64F_PEDANTIC:
    case CUBLAS_COMPUTE_64F_EMULATED_FIXEDPOINT:
      if (!is(CUDA_R_64F, CUDA_R_64F, CUDA_R_64F)) return CUBLAS_STATUS_NOT_SUPPORTED;
      a = *static_cast<const double*>(alpha);
      b = *static_cast<const double*>(beta);
      break;
    default:
      return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  if (computeType != CUBLAS_COMPUTE_16F && computeType != CUBLAS_COMPUTE_16F_PEDANTIC && Atype != CUDA_R_64F) {
    a = *static_cast<const float*>(alpha);
    b = *static_cast<const float*>(beta);
  }
  // A *_TENSOR_OP algo with fp32 data "is equivalent to using CUBLAS_COMPUTE_32F_FAST_16F" [DOC-BLAS].
  if (Atype == CUDA_R_32F && al >= CUBLAS_GEMM_DEFAULT_TENSOR_OP && al <= CUBLAS_GEMM_ALGO15_TENSOR_OP) round = Round::f16;
  return run("cublasGemmEx", handle,
             Gemm{transa, transb, m, n, k, A, B, C, lda, ldb, ldc, 0, 0, 0, 1, elem_of_cuda(Atype),
                  elem_of_cuda(Btype), elem_of_cuda(Ctype), a, b, round, al});
}

}  // extern "C"
