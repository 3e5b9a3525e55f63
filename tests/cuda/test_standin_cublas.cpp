// cuBLAS stand-in: column-major GEMM with transposes and leading dimensions against a loop written
// here, alpha/beta (beta = 0 overwrites NaN), untouched rows between m and ldc, bf16/f16 GemmEx with
// fp32 accumulation, strided batches, reduced-precision emulation, and the documented failure statuses.
#include <limits>

#include "tests/cuda/test_standin_util.h"

using namespace standin_test;

namespace {

struct Blas {
  cublasHandle_t h = nullptr;
  Blas() { REQUIRE(cublasCreate_v2(&h) == CUBLAS_STATUS_SUCCESS); }
  ~Blas() { cublasDestroy_v2(h); }
};

// C(i,j) = alpha * sum_l op(A)(i,l) op(B)(l,j) + beta * C(i,j), column-major, on doubles.
std::vector<double> ref_gemm(bool ta, bool tb, int m, int n, int k, double alpha, const std::vector<double>& A, int lda,
                             const std::vector<double>& B, int ldb, double beta, std::vector<double> C, int ldc) {
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      double s = 0;
      for (int l = 0; l < k; ++l) s += (ta ? A[l + size_t(i) * lda] : A[i + size_t(l) * lda]) * (tb ? B[j + size_t(l) * ldb] : B[l + size_t(j) * ldb]);
      C[i + size_t(j) * ldc] = alpha * s + beta * C[i + size_t(j) * ldc];
    }
  return C;
}

}  // namespace

TEST_CASE("Sgemm hand case: 2x2 times 2x2, column-major") {
  Blas b;
  const float A[4] = {1, 3, 2, 4};  // [[1,2],[3,4]] column-major
  const float B[4] = {5, 7, 6, 8};  // [[5,6],[7,8]]
  float C[4] = {1, 1, 1, 1};
  const float one = 1, two = 2;
  REQUIRE(cublasSgemm_v2(b.h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, A, 2, B, 2, &two, C, 2) == CUBLAS_STATUS_SUCCESS);
  // [[19,22],[43,50]] + 2
  CHECK(C[0] == 21.f);
  CHECK(C[1] == 45.f);
  CHECK(C[2] == 24.f);
  CHECK(C[3] == 52.f);
  REQUIRE(cublasSgemm_v2(b.h, CUBLAS_OP_T, CUBLAS_OP_N, 2, 2, 2, &one, A, 2, B, 2, &one, C, 2) == CUBLAS_STATUS_SUCCESS);
  CHECK(C[0] == 21.f + 26.f);  // A^T B = [[26,30],[38,44]]
  CHECK(C[3] == 52.f + 44.f);
}

TEST_CASE("Sgemm/Dgemm random vs loop: all transposes, padded leading dims, rows between m and ldc untouched") {
  Blas b;
  const int m = 5, n = 4, k = 3;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      const int lda = (ta ? k : m) + 2, ldb = (tb ? n : k) + 1, ldc = m + 3;
      const std::vector<float> A = randu(size_t(lda) * (ta ? m : k), 51), B = randu(size_t(ldb) * (tb ? k : n), 52);
      std::vector<float> C = randu(size_t(ldc) * n, 53);
      const std::vector<float> C0 = C;
      const float alpha = 1.5f, beta = -0.75f;
      REQUIRE(cublasSgemm_v2(b.h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &alpha,
                             A.data(), lda, B.data(), ldb, &beta, C.data(), ldc) == CUBLAS_STATUS_SUCCESS);
      check_close(to_double(C), ref_gemm(ta, tb, m, n, k, alpha, to_double(A), lda, to_double(B), ldb, beta, to_double(C0), ldc),
                  1e-6, 1e-6, "sgemm");
      for (int j = 0; j < n; ++j)
        for (int i = m; i < ldc; ++i) CHECK(C[i + size_t(j) * ldc] == C0[i + size_t(j) * ldc]);
      const std::vector<double> Ad = to_double(A), Bd = to_double(B);
      std::vector<double> Cd(size_t(ldc) * n, std::numeric_limits<double>::quiet_NaN());
      const double da = 0.5, db = 0.0;  // beta = 0: NaN in C must be overwritten
      REQUIRE(cublasDgemm_v2(b.h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &da, Ad.data(),
                             lda, Bd.data(), ldb, &db, Cd.data(), ldc) == CUBLAS_STATUS_SUCCESS);
      const std::vector<double> ref = ref_gemm(ta, tb, m, n, k, da, Ad, lda, Bd, ldb, 0.0, std::vector<double>(Cd.size(), 0.0), ldc);
      for (int j = 0; j < n; ++j)
        for (int i = 0; i < m; ++i) CHECK(Cd[i + size_t(j) * ldc] == doctest::Approx(ref[i + size_t(j) * ldc]).epsilon(1e-12));
    }
}

TEST_CASE("GemmEx bf16 and f16 inputs with fp32 compute; bf16 output within its tolerance") {
  Blas b;
  const int m = 7, n = 6, k = 33;
  std::vector<float> Af = randu(size_t(m) * k, 61), Bf = randu(size_t(k) * n, 62);
  std::vector<uint16_t> A(Af.size()), B(Bf.size());
  for (size_t i = 0; i < A.size(); ++i) A[i] = to_bf16(Af[i]), Af[i] = from_bf16(A[i]);
  for (size_t i = 0; i < B.size(); ++i) B[i] = to_bf16(Bf[i]), Bf[i] = from_bf16(B[i]);
  const std::vector<double> ref =
      ref_gemm(false, false, m, n, k, 1.0, to_double(Af), m, to_double(Bf), k, 0.0, std::vector<double>(size_t(m) * n), m);
  const float one = 1, zero = 0;
  std::vector<float> C32(size_t(m) * n, std::numeric_limits<float>::quiet_NaN());
  REQUIRE(cublasGemmEx(b.h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, A.data(), CUDA_R_16BF, m, B.data(), CUDA_R_16BF, k,
                       &zero, C32.data(), CUDA_R_32F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
  check_close(to_double(C32), ref, 1e-6, 1e-6, "bf16 x bf16 -> f32");  // exact products, fp32-or-better sums
  std::vector<uint16_t> C16(size_t(m) * n, 0x7fc0);
  REQUIRE(cublasGemmEx(b.h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, A.data(), CUDA_R_16BF, m, B.data(), CUDA_R_16BF, k,
                       &zero, C16.data(), CUDA_R_16BF, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
  std::vector<double> got(C16.size());
  for (size_t i = 0; i < got.size(); ++i) got[i] = from_bf16(C16[i]);
  check_close(got, ref, 1e-3, 1.0 / 256, "bf16 x bf16 -> bf16");
  // f16 inputs: values exactly representable in half (multiples of 1/64 in [-1, 1]).
  std::vector<uint16_t> Ah(A.size()), Bh(B.size());
  std::vector<double> Ad(A.size()), Bd(B.size());
  auto to_half = [](double v) {  // v = q/64 with |q| <= 64: build the binary16 pattern from frexp
    if (v == 0) return uint16_t(0);
    int e;
    const double fr = std::frexp(std::fabs(v), &e);  // v = fr * 2^e, fr in [0.5, 1)
    const int mant = int(std::lround((fr * 2 - 1) * 1024));
    return uint16_t((v < 0 ? 0x8000 : 0) | ((e - 1 + 15) << 10) | mant);
  };
  for (size_t i = 0; i < A.size(); ++i) Ad[i] = std::round(Af[i] * 64) / 64, Ah[i] = to_half(Ad[i]);
  for (size_t i = 0; i < B.size(); ++i) Bd[i] = std::round(Bf[i] * 64) / 64, Bh[i] = to_half(Bd[i]);
  REQUIRE(cublasGemmEx(b.h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, Ah.data(), CUDA_R_16F, m, Bh.data(), CUDA_R_16F, k,
                       &zero, C32.data(), CUDA_R_32F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
  check_close(to_double(C32), ref_gemm(false, false, m, n, k, 1.0, Ad, m, Bd, k, 0.0, std::vector<double>(size_t(m) * n), m),
              1e-6, 1e-6, "f16 x f16 -> f32");
}

TEST_CASE("SgemmStridedBatched: each batch is its own GEMM") {
  Blas b;
  const int m = 3, n = 2, k = 4, batch = 3;
  const long long sa = m * k + 1, sb = k * n + 2, sc = m * n + 3;
  const std::vector<float> A = randu(size_t(sa) * batch, 71), B = randu(size_t(sb) * batch, 72);
  std::vector<float> C = randu(size_t(sc) * batch, 73);
  const std::vector<float> C0 = C;
  const float alpha = 1, beta = 1;
  REQUIRE(cublasSgemmStridedBatched(b.h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, A.data(), m, sa, B.data(), k, sb,
                                    &beta, C.data(), m, sc, batch) == CUBLAS_STATUS_SUCCESS);
  for (int i = 0; i < batch; ++i) {
    const std::vector<double> Ai(A.begin() + i * sa, A.begin() + i * sa + m * k), Bi(B.begin() + i * sb, B.begin() + i * sb + k * n);
    const std::vector<double> Ci(C0.begin() + i * sc, C0.begin() + i * sc + m * n), got(C.begin() + i * sc, C.begin() + i * sc + m * n);
    check_close(got, ref_gemm(false, false, m, n, k, 1, Ai, m, Bi, k, 1, Ci, m), 1e-6, 1e-6, "batch");
    CHECK(C[size_t(i * sc + m * n)] == C0[size_t(i * sc + m * n)]);  // gap between batches untouched
  }
}

TEST_CASE("reduced-precision modes are emulated: TF32 math mode and FAST_16BF round the fp32 inputs") {
  Blas b;
  const float a = 1.f + 0x1p-12f, one = 1, zero = 0;  // exact in fp32, not in TF32 (10 bits) or bf16 (7 bits)
  float c = 0;
  REQUIRE(cublasSgemm_v2(b.h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, &a, 1, &one, 1, &zero, &c, 1) == CUBLAS_STATUS_SUCCESS);
  CHECK(c == a);  // default math: no TF32 in cuBLAS
  REQUIRE(cublasSetMathMode(b.h, CUBLAS_TF32_TENSOR_OP_MATH) == CUBLAS_STATUS_SUCCESS);
  REQUIRE(cublasSgemm_v2(b.h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, &a, 1, &one, 1, &zero, &c, 1) == CUBLAS_STATUS_SUCCESS);
  CHECK(c == 1.f);
  REQUIRE(cublasGemmEx(b.h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, &a, CUDA_R_32F, 1, &one, CUDA_R_32F, 1, &zero, &c,
                       CUDA_R_32F, 1, CUBLAS_COMPUTE_32F_PEDANTIC, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
  CHECK(c == a);  // pedantic ignores the math mode
  REQUIRE(cublasSetMathMode(b.h, CUBLAS_DEFAULT_MATH) == CUBLAS_STATUS_SUCCESS);
  REQUIRE(cublasGemmEx(b.h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, &a, CUDA_R_32F, 1, &one, CUDA_R_32F, 1, &zero, &c,
                       CUDA_R_32F, 1, CUBLAS_COMPUTE_32F_FAST_16BF, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
  CHECK(c == 1.f);
  cublasMath_t mode;
  REQUIRE(cublasGetMathMode(b.h, &mode) == CUBLAS_STATUS_SUCCESS);
  CHECK(mode == CUBLAS_DEFAULT_MATH);
}

TEST_CASE("cuBLAS misuse: INVALID_VALUE, NOT_SUPPORTED, NOT_INITIALIZED") {
  Blas b;
  std::vector<float> A(64, 1.f), B(64, 1.f), C(64, 0.f);
  const float one = 1;
  auto sg = [&](cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int lda, int ldb,
                int ldc, const float* alpha = nullptr) {
    return cublasSgemm_v2(h, ta, tb, m, n, k, alpha ? alpha : &one, A.data(), lda, B.data(), ldb, &one, C.data(), ldc);
  };
  const auto N = CUBLAS_OP_N, T = CUBLAS_OP_T;
  CHECK(sg(b.h, N, N, 4, 3, 2, 4, 2, 4) == CUBLAS_STATUS_SUCCESS);
  CHECK(sg(b.h, N, N, -1, 3, 2, 4, 2, 4) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(sg(b.h, N, N, 4, 3, -2, 4, 2, 4) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(sg(b.h, N, N, 4, 3, 2, 3, 2, 4) == CUBLAS_STATUS_INVALID_VALUE);  // lda < m
  CHECK(sg(b.h, T, N, 4, 3, 2, 1, 2, 4) == CUBLAS_STATUS_INVALID_VALUE);  // lda < k for OP_T
  CHECK(sg(b.h, T, N, 4, 3, 2, 2, 2, 4) == CUBLAS_STATUS_SUCCESS);
  CHECK(sg(b.h, N, N, 4, 3, 2, 4, 1, 4) == CUBLAS_STATUS_INVALID_VALUE);  // ldb < k
  CHECK(sg(b.h, N, T, 4, 3, 2, 4, 2, 4) == CUBLAS_STATUS_INVALID_VALUE);  // ldb < n for OP_T
  CHECK(sg(b.h, N, N, 4, 3, 2, 4, 2, 3) == CUBLAS_STATUS_INVALID_VALUE);  // ldc < m
  CHECK(sg(b.h, cublasOperation_t(7), N, 4, 3, 2, 4, 2, 4) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(cublasSgemm_v2(b.h, N, N, 4, 3, 2, nullptr, A.data(), 4, B.data(), 2, &one, C.data(), 4) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(sg(b.h, N, N, 0, 3, 2, 1, 2, 1) == CUBLAS_STATUS_SUCCESS);  // quick return
  CHECK(sg(nullptr, N, N, 4, 3, 2, 0, 2, 4) == CUBLAS_STATUS_NOT_INITIALIZED);  // before any argument check
  CHECK(cublasSgemmStridedBatched(b.h, N, N, 2, 2, 2, &one, A.data(), 2, 4, B.data(), 2, 4, &one, C.data(), 2, 4, -1) ==
        CUBLAS_STATUS_INVALID_VALUE);
  auto ex = [&](cudaDataType_t at, cudaDataType_t ct, cublasComputeType_t comp, cublasGemmAlgo_t algo = CUBLAS_GEMM_DEFAULT) {
    return cublasGemmEx(b.h, N, N, 2, 2, 2, &one, A.data(), at, 2, B.data(), at, 2, &one, C.data(), ct, 2, comp, algo);
  };
  CHECK(ex(CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F) == CUBLAS_STATUS_SUCCESS);
  CHECK(ex(CUDA_R_16BF, CUDA_R_16BF, CUBLAS_COMPUTE_16F) == CUBLAS_STATUS_NOT_SUPPORTED);
  CHECK(ex(CUDA_R_16BF, CUDA_R_16F, CUBLAS_COMPUTE_32F) == CUBLAS_STATUS_NOT_SUPPORTED);
  CHECK(ex(CUDA_R_32F, CUDA_R_16BF, CUBLAS_COMPUTE_32F) == CUBLAS_STATUS_NOT_SUPPORTED);
  CHECK(ex(CUDA_R_16BF, CUDA_R_16BF, CUBLAS_COMPUTE_32F_FAST_TF32) == CUBLAS_STATUS_NOT_SUPPORTED);
  CHECK(ex(CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F, cublasGemmAlgo_t(50)) == CUBLAS_STATUS_NOT_SUPPORTED);
  CHECK(cublasSetMathMode(b.h, cublasMath_t(5)) == CUBLAS_STATUS_INVALID_VALUE);
  CHECK(cublasSetMathMode(b.h, cublasMath_t(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)) ==
        CUBLAS_STATUS_SUCCESS);
  CHECK(cublasSetMathMode(nullptr, CUBLAS_DEFAULT_MATH) == CUBLAS_STATUS_NOT_INITIALIZED);
  CHECK(cublasSetStream_v2(nullptr, nullptr) == CUBLAS_STATUS_NOT_INITIALIZED);
  CHECK(cublasDestroy_v2(nullptr) == CUBLAS_STATUS_NOT_INITIALIZED);
  cublasHandle_t dead;
  REQUIRE(cublasCreate_v2(&dead) == CUBLAS_STATUS_SUCCESS);
  REQUIRE(cublasDestroy_v2(dead) == CUBLAS_STATUS_SUCCESS);
  CHECK(sg(dead, N, N, 4, 3, 2, 4, 2, 4) == CUBLAS_STATUS_NOT_INITIALIZED);  // destroyed handle
}

TEST_CASE("cuBLAS call log, pointer validator extents, workspace lint after SetStream") {
  Blas b;
  const int m = 3, n = 2, k = 4, lda = 5, ldb = 4, ldc = 6;
  std::vector<float> A(size_t(lda) * k), B(size_t(ldb) * n), C(size_t(ldc) * n);
  std::vector<std::pair<const void*, size_t>> seen;
  rtune::sim::set_device_pointer_validator([&](const void* p, size_t bytes, const char*) { seen.emplace_back(p, bytes); });
  rtune::sim::call_log_enable(true);
  rtune::sim::call_log_clear();
  const float one = 1, zero = 0;
  REQUIRE(cublasSgemm_v2(b.h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, A.data(), lda, B.data(), ldb, &zero, C.data(), ldc) ==
          CUBLAS_STATUS_SUCCESS);
  rtune::sim::set_device_pointer_validator({});
  const auto log = rtune::sim::call_log_take();
  rtune::sim::call_log_enable(false);
  REQUIRE(log.size() == 1);
  CHECK(log[0].function == "cublasSgemm_v2");
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].second == size_t((k - 1) * lda + m) * 4);  // last column ends at row m, not at lda
  CHECK(seen[1].second == size_t((n - 1) * ldb + k) * 4);
  CHECK(seen[2].second == size_t((n - 1) * ldc + m) * 4);
  LintThrows lint;
  alignas(256) static char ws[1024];
  REQUIRE(cublasSetWorkspace_v2(b.h, ws, sizeof ws) == CUBLAS_STATUS_SUCCESS);
  REQUIRE(cublasSetStream_v2(b.h, nullptr) == CUBLAS_STATUS_SUCCESS);
  CHECK_THROWS_WITH(cublasSgemm_v2(b.h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, A.data(), lda, B.data(), ldb, &zero,
                                   C.data(), ldc),
                    doctest::Contains("cublasSetWorkspace"));
  CHECK_THROWS_WITH(cublasSetWorkspace_v2(b.h, ws + 8, 64), doctest::Contains("256-byte"));
}
