// cuDNN stand-in batch norm: the PyTorch 2.15 test vector of docs/cuda-libs-semantics.md §5, random
// NCHW/NHWC cases against loops written here, bf16, alpha/beta, backward with and without saved
// statistics, and the BAD_PARAM cases.
#include <limits>

#include "tests/cuda/test_standin_util.h"

using namespace standin_test;

namespace {

struct BnRef {
  std::vector<double> y, mean, invstd, rm, rv, dx, dgamma, dbeta;
};

// Direct per-channel loops on logical NCHW data.
BnRef reference(int N, int C, int HW, const std::vector<double>& x, const std::vector<double>& gamma,
                const std::vector<double>& beta, const std::vector<double>& dy, double eps, double f,
                const std::vector<double>& rm0, const std::vector<double>& rv0) {
  BnRef r;
  const double M = double(N) * HW;
  r.y.resize(x.size()), r.dx.resize(x.size());
  for (int c = 0; c < C; ++c) {
    double s = 0, ss = 0;
    for (int n = 0; n < N; ++n)
      for (int i = 0; i < HW; ++i) s += x[(size_t(n) * C + c) * HW + i];
    const double mu = s / M;
    for (int n = 0; n < N; ++n)
      for (int i = 0; i < HW; ++i) ss += std::pow(x[(size_t(n) * C + c) * HW + i] - mu, 2);
    const double var = ss / M, inv = 1 / std::sqrt(var + eps);
    r.mean.push_back(mu), r.invstd.push_back(inv);
    r.rm.push_back((1 - f) * rm0[size_t(c)] + f * mu);
    r.rv.push_back((1 - f) * rv0[size_t(c)] + f * ss / (M - 1));
    double db = 0, dg = 0;
    for (int n = 0; n < N; ++n)
      for (int i = 0; i < HW; ++i) {
        const size_t j = (size_t(n) * C + c) * HW + i;
        const double xh = (x[j] - mu) * inv;
        r.y[j] = gamma[size_t(c)] * xh + beta[size_t(c)];
        db += dy[j], dg += dy[j] * xh;
      }
    r.dbeta.push_back(db), r.dgamma.push_back(dg);
    for (int n = 0; n < N; ++n)
      for (int i = 0; i < HW; ++i) {
        const size_t j = (size_t(n) * C + c) * HW + i;
        r.dx[j] = gamma[size_t(c)] * inv * (dy[j] - db / M - (x[j] - mu) * inv * dg / M);
      }
  }
  return r;
}

// Memory index of logical (n, c, i) for NCHW or NHWC storage.
size_t at(int C, int HW, int n, int c, int i, bool nhwc) {
  return nhwc ? (size_t(n) * HW + i) * C + c : (size_t(n) * C + c) * HW + i;
}

}  // namespace

TEST_CASE("batch norm training: PyTorch test vector x = [1,2,3,4], eps 1e-5, factor 1") {
  Handle h;
  Tensor xd, pd;
  REQUIRE(cudnnSetTensor4dDescriptor(xd.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 1, 2, 1) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnDeriveBNTensorDescriptor(pd.d, xd.d, CUDNN_BATCHNORM_SPATIAL_PERSISTENT) == CUDNN_STATUS_SUCCESS);
  const float x[4] = {1, 2, 3, 4}, gamma = 1, beta_p = 0, one = 1, zero = 0;
  float y[4], rm = 0, rv = 1, sm = 0, sv = 0;
  std::fill(y, y + 4, std::numeric_limits<float>::quiet_NaN());
  REQUIRE(cudnnBatchNormalizationForwardTraining(h.h, CUDNN_BATCHNORM_SPATIAL_PERSISTENT, &one, &zero, xd.d, x, xd.d, y,
                                                 pd.d, &gamma, &beta_p, 1.0, &rm, &rv, 1e-5, &sm, &sv) ==
          CUDNN_STATUS_SUCCESS);
  CHECK(rm == doctest::Approx(2.5));
  CHECK(rv == doctest::Approx(5.0 / 3).epsilon(1e-6));
  CHECK(sm == doctest::Approx(2.5));
  CHECK(sv == doctest::Approx(0.894424).epsilon(1e-5));
  const double expect[4] = {-1.3416, -0.4472, 0.4472, 1.3416};
  for (int i = 0; i < 4; ++i) CHECK(y[i] == doctest::Approx(expect[i]).epsilon(1e-4));
}

TEST_CASE("batch norm training/inference/backward vs direct loops, NCHW and NHWC, alpha/beta") {
  const int N = 3, C = 4, H = 5, W = 3, HW = H * W;
  const size_t count = size_t(N) * C * HW;
  for (bool nhwc : {false, true}) {
    CAPTURE(nhwc);
    Handle h;
    Tensor xd, pd;
    REQUIRE(cudnnSetTensor4dDescriptor(xd.d, nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, N, C, H,
                                       W) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnDeriveBNTensorDescriptor(pd.d, xd.d, CUDNN_BATCHNORM_SPATIAL) == CUDNN_STATUS_SUCCESS);
    const std::vector<double> x = to_double(randu(count, 21, -2, 3)), dy = to_double(randu(count, 22));
    const std::vector<double> gamma = to_double(randu(C, 23, 0.5, 1.5)), beta = to_double(randu(C, 24));
    const std::vector<double> rm0 = to_double(randu(C, 25)), rv0 = to_double(randu(C, 26, 0.5, 2));
    const std::vector<double> y0 = to_double(randu(count, 27)), dx0 = to_double(randu(count, 28));
    const double eps = 1e-3, f = 0.1;
    const BnRef ref = reference(N, C, HW, x, gamma, beta, dy, eps, f, rm0, rv0);
    std::vector<float> xm(count), dym(count), ym(count), dxm(count);
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < C; ++c)
        for (int i = 0; i < HW; ++i) {
          const size_t j = (size_t(n) * C + c) * HW + i, m = at(C, HW, n, c, i, nhwc);
          xm[m] = float(x[j]), dym[m] = float(dy[j]), ym[m] = float(y0[j]), dxm[m] = float(dx0[j]);
        }
    auto logical = [&](const std::vector<float>& mem) {
      std::vector<double> out(count);
      for (int n = 0; n < N; ++n)
        for (int c = 0; c < C; ++c)
          for (int i = 0; i < HW; ++i) out[(size_t(n) * C + c) * HW + i] = mem[at(C, HW, n, c, i, nhwc)];
      return out;
    };
    std::vector<float> g(gamma.begin(), gamma.end()), b(beta.begin(), beta.end()), rm(rm0.begin(), rm0.end()),
        rv(rv0.begin(), rv0.end()), sm(C), sv(C);
    const float alpha = 2.f, bl = 0.5f;
    REQUIRE(cudnnBatchNormalizationForwardTraining(h.h, CUDNN_BATCHNORM_SPATIAL, &alpha, &bl, xd.d, xm.data(), xd.d,
                                                   ym.data(), pd.d, g.data(), b.data(), f, rm.data(), rv.data(), eps,
                                                   sm.data(), sv.data()) == CUDNN_STATUS_SUCCESS);
    std::vector<double> yexp(count);
    for (size_t i = 0; i < count; ++i) yexp[i] = alpha * ref.y[i] + bl * double(float(y0[i]));
    check_close(logical(ym), yexp, 1e-5, 1e-5, "training y");
    check_close(to_double(rm), ref.rm, 1e-6, 1e-5, "running mean");
    check_close(to_double(rv), ref.rv, 1e-6, 1e-5, "running var (unbiased)");
    check_close(to_double(sm), ref.mean, 1e-6, 1e-5, "saved mean");
    check_close(to_double(sv), ref.invstd, 1e-6, 1e-5, "saved inv std");

    // Backward with saved statistics and with NULL ones (recomputed from x): same numbers.
    for (bool saved : {true, false}) {
      CAPTURE(saved);
      std::vector<float> dxs = dxm, dg(C, 1.f), dbb(C, 1.f);
      const float ad = 1.f, bd = 0.5f, ap = 1.f, bp = 0.f;
      REQUIRE(cudnnBatchNormalizationBackward(h.h, CUDNN_BATCHNORM_SPATIAL, &ad, &bd, &ap, &bp, xd.d, xm.data(), xd.d,
                                              dym.data(), xd.d, dxs.data(), pd.d, g.data(), dg.data(), dbb.data(), eps,
                                              saved ? sm.data() : nullptr,
                                              saved ? sv.data() : nullptr) == CUDNN_STATUS_SUCCESS);
      std::vector<double> dxexp(count);
      for (size_t i = 0; i < count; ++i) dxexp[i] = ref.dx[i] + bd * double(float(dx0[i]));
      check_close(logical(dxs), dxexp, 1e-5, 1e-4, "dx");
      check_close(to_double(dg), ref.dgamma, 1e-5, 1e-5, "dgamma");
      check_close(to_double(dbb), ref.dbeta, 1e-5, 1e-5, "dbeta");
    }

    // Inference with the running statistics; beta = 0 overwrites NaN.
    std::vector<float> yi(count, std::numeric_limits<float>::quiet_NaN());
    const float one = 1, zero = 0;
    REQUIRE(cudnnBatchNormalizationForwardInference(h.h, CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd.d, xm.data(), xd.d,
                                                    yi.data(), pd.d, g.data(), b.data(), rm.data(), rv.data(),
                                                    eps) == CUDNN_STATUS_SUCCESS);
    std::vector<double> yiexp(count);
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < C; ++c)
        for (int i = 0; i < HW; ++i) {
          const size_t j = (size_t(n) * C + c) * HW + i;
          yiexp[j] = gamma[size_t(c)] * (x[j] - rm[size_t(c)]) / std::sqrt(rv[size_t(c)] + eps) + beta[size_t(c)];
        }
    check_close(logical(yi), yiexp, 1e-5, 1e-5, "inference y");
  }
}

TEST_CASE("batch norm bf16 data with float parameters") {
  const int N = 2, C = 3, H = 4, W = 4, HW = H * W;
  const size_t count = size_t(N) * C * HW;
  Handle h;
  Tensor xd, pd;
  REQUIRE(cudnnSetTensor4dDescriptor(xd.d, CUDNN_TENSOR_NHWC, CUDNN_DATA_BFLOAT16, N, C, H, W) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnDeriveBNTensorDescriptor(pd.d, xd.d, CUDNN_BATCHNORM_SPATIAL_PERSISTENT) == CUDNN_STATUS_SUCCESS);
  cudnnDataType_t pt;
  int n, c, hh, ww, s0, s1, s2, s3;
  REQUIRE(cudnnGetTensor4dDescriptor(pd.d, &pt, &n, &c, &hh, &ww, &s0, &s1, &s2, &s3) == CUDNN_STATUS_SUCCESS);
  CHECK(pt == CUDNN_DATA_FLOAT);
  CHECK((n == 1 && c == C && hh == 1 && ww == 1));
  std::vector<double> x = to_double(randu(count, 31, -1, 2));
  for (double& v : x) v = from_bf16(to_bf16(float(v)));
  const std::vector<double> gamma(C, 1.5), beta(C, 0.25), zeros(C, 0.0), ones(C, 1.0), dy(count, 0.0);
  const BnRef ref = reference(N, C, HW, x, gamma, beta, dy, 1e-5, 1.0, zeros, ones);
  std::vector<uint16_t> xm(count), ym(count, 0x7fc0);
  for (int in = 0; in < N; ++in)
    for (int ic = 0; ic < C; ++ic)
      for (int i = 0; i < HW; ++i) xm[at(C, HW, in, ic, i, true)] = to_bf16(float(x[(size_t(in) * C + ic) * HW + i]));
  std::vector<float> g(C, 1.5f), b(C, 0.25f);
  const float one = 1, zero = 0;
  REQUIRE(cudnnBatchNormalizationForwardTraining(h.h, CUDNN_BATCHNORM_SPATIAL_PERSISTENT, &one, &zero, xd.d, xm.data(),
                                                 xd.d, ym.data(), pd.d, g.data(), b.data(), 1.0, nullptr, nullptr, 1e-5,
                                                 nullptr, nullptr) == CUDNN_STATUS_SUCCESS);
  std::vector<double> got(count);
  for (int in = 0; in < N; ++in)
    for (int ic = 0; ic < C; ++ic)
      for (int i = 0; i < HW; ++i) got[(size_t(in) * C + ic) * HW + i] = from_bf16(ym[at(C, HW, in, ic, i, true)]);
  check_close(got, ref.y, 1e-2, 1.0 / 256, "bf16 y");  // one bf16 rounding of the output
}

TEST_CASE("batch norm misuse fails like cuDNN; M <= 1 is lint") {
  Handle h;
  Tensor xd, pd, bad_p, yd_other;
  REQUIRE(cudnnSetTensor4dDescriptor(xd.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 3, 2, 2) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnDeriveBNTensorDescriptor(pd.d, xd.d, CUDNN_BATCHNORM_SPATIAL) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetTensor4dDescriptor(bad_p.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 3, 2, 2) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetTensor4dDescriptor(yd_other.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_HALF, 2, 3, 2, 2) == CUDNN_STATUS_SUCCESS);
  std::vector<float> x(24, 1.f), y(24), p(12, 1.f), q(12, 0.f), r(12, 0.f), s(12, 0.f);
  const float one = 1, zero = 0;
  auto train = [&](cudnnTensorDescriptor_t yd, cudnnTensorDescriptor_t pdesc, void* rm, void* rv, void* sm, void* sv,
                   double eps) {
    return cudnnBatchNormalizationForwardTraining(h.h, CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd.d, x.data(), yd,
                                                  y.data(), pdesc, p.data(), q.data(), 0.1, rm, rv, eps, sm, sv);
  };
  CHECK(train(xd.d, pd.d, r.data(), s.data(), nullptr, nullptr, 1e-5) == CUDNN_STATUS_SUCCESS);
  CHECK(train(xd.d, bad_p.d, nullptr, nullptr, nullptr, nullptr, 1e-5) == CUDNN_STATUS_BAD_PARAM);  // not 1xCx1x1
  CHECK(train(yd_other.d, pd.d, nullptr, nullptr, nullptr, nullptr, 1e-5) == CUDNN_STATUS_BAD_PARAM);
  CHECK(train(xd.d, pd.d, r.data(), nullptr, nullptr, nullptr, 1e-5) == CUDNN_STATUS_BAD_PARAM);  // half a pair
  CHECK(train(xd.d, pd.d, nullptr, nullptr, nullptr, s.data(), 1e-5) == CUDNN_STATUS_BAD_PARAM);
  CHECK(train(xd.d, pd.d, nullptr, nullptr, nullptr, nullptr, -1e-5) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnBatchNormalizationForwardTraining(h.h, cudnnBatchNormMode_t(7), &one, &zero, xd.d, x.data(), xd.d, y.data(),
                                               pd.d, p.data(), q.data(), 0.1, nullptr, nullptr, 1e-5, nullptr,
                                               nullptr) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnBatchNormalizationForwardInference(h.h, CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd.d, x.data(), xd.d,
                                                y.data(), pd.d, p.data(), q.data(), nullptr, s.data(),
                                                1e-5) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnBatchNormalizationBackward(h.h, CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, xd.d, x.data(), xd.d,
                                        x.data(), xd.d, y.data(), pd.d, p.data(), q.data(), r.data(), 1e-5, s.data(),
                                        nullptr) == CUDNN_STATUS_BAD_PARAM);
  LintThrows lint;
  Tensor single, sp;
  REQUIRE(cudnnSetTensor4dDescriptor(single.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 3, 1, 1) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnDeriveBNTensorDescriptor(sp.d, single.d, CUDNN_BATCHNORM_SPATIAL) == CUDNN_STATUS_SUCCESS);
  CHECK_THROWS_WITH(cudnnBatchNormalizationForwardTraining(h.h, CUDNN_BATCHNORM_SPATIAL, &one, &zero, single.d, x.data(),
                                                           single.d, y.data(), sp.d, p.data(), q.data(), 0.1, nullptr,
                                                           nullptr, 1e-5, nullptr, nullptr),
                    doctest::Contains("more than 1"));
}
