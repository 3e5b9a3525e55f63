// cuDNN stand-in pooling (max, average include/exclude padding), AddTensor and SetTensor: hand cases,
// random cases against loops written here (NCHW and NHWC), alpha/beta, misuse statuses and lint.
#include <limits>

#include "tests/cuda/test_standin_util.h"

using namespace standin_test;

namespace {

struct PoolCase {
  int n, c, h, w, k, pad, stride;
  int ho() const { return 1 + (h + 2 * pad - k) / stride; }
  int wo() const { return 1 + (w + 2 * pad - k) / stride; }
};

size_t mem(const PoolCase& p, int H, int W, int n, int c, int h, int w, bool nhwc) {
  return nhwc ? ((size_t(n) * H + h) * W + w) * p.c + c : ((size_t(n) * p.c + c) * H + h) * W + w;
}

}  // namespace

TEST_CASE("max pooling hand case: padded cells never win, gradient to the first maximum") {
  Handle h;
  Tensor xd, yd;
  Pooling pd;
  REQUIRE(cudnnSetTensor4dDescriptor(xd.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 2, 2) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetPooling2dDescriptor(pd.d, CUDNN_POOLING_MAX, CUDNN_PROPAGATE_NAN, 2, 2, 1, 1, 2, 2) ==
          CUDNN_STATUS_SUCCESS);
  int n, c, ho, wo;
  REQUIRE(cudnnGetPooling2dForwardOutputDim(pd.d, xd.d, &n, &c, &ho, &wo) == CUDNN_STATUS_SUCCESS);
  REQUIRE((ho == 2 && wo == 2));
  REQUIRE(cudnnSetTensor4dDescriptor(yd.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 2, 2) == CUDNN_STATUS_SUCCESS);
  const float x[4] = {-5, -5, -5, -5}, one = 1, zero = 0;
  float y[4];
  REQUIRE(cudnnPoolingForward(h.h, pd.d, &one, xd.d, x, &zero, yd.d, y) == CUDNN_STATUS_SUCCESS);
  for (float v : y) CHECK(v == -5.f);  // PyTorch gives -5 with pad 1, not the padding's 0
  const float x2[4] = {1, std::numeric_limits<float>::quiet_NaN(), 3, 4};
  REQUIRE(cudnnPoolingForward(h.h, pd.d, &one, xd.d, x2, &zero, yd.d, y) == CUDNN_STATUS_SUCCESS);
  CHECK(std::isnan(y[1]));  // PROPAGATE_NAN
  CHECK(y[2] == 3.f);
  // 3x3 window stride 1 over a 2x2 input with pad 1: ties go to the first maximum in row-major order.
  REQUIRE(cudnnSetPooling2dDescriptor(pd.d, CUDNN_POOLING_MAX, CUDNN_PROPAGATE_NAN, 3, 3, 1, 1, 1, 1) ==
          CUDNN_STATUS_SUCCESS);
  const float x3[4] = {7, 2, 7, 1}, dy[4] = {1, 10, 100, 1000};
  float y3[4], dx[4];
  REQUIRE(cudnnPoolingForward(h.h, pd.d, &one, xd.d, x3, &zero, yd.d, y3) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnPoolingBackward(h.h, pd.d, &one, yd.d, y3, yd.d, dy, xd.d, x3, &zero, xd.d, dx) == CUDNN_STATUS_SUCCESS);
  CHECK(dx[0] == 1111.f);  // every window sees both 7s; the first (row 0) wins
  CHECK(dx[2] == 0.f);
}

TEST_CASE("pooling forward/backward vs direct loops: max, avg include/exclude, NCHW and NHWC, alpha/beta") {
  const PoolCase cases[] = {{2, 3, 7, 6, 3, 1, 2}, {1, 2, 6, 6, 2, 0, 2}, {2, 2, 5, 7, 3, 1, 1}};
  for (const PoolCase& pc : cases)
    for (cudnnPoolingMode_t mode :
         {CUDNN_POOLING_MAX, CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING, CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING})
      for (bool nhwc : {false, true}) {
        CAPTURE(int(mode));
        CAPTURE(nhwc);
        CAPTURE(pc.h);
        Handle h;
        Tensor xd, yd;
        Pooling pd;
        const cudnnTensorFormat_t f = nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
        REQUIRE(cudnnSetTensor4dDescriptor(xd.d, f, CUDNN_DATA_FLOAT, pc.n, pc.c, pc.h, pc.w) == CUDNN_STATUS_SUCCESS);
        REQUIRE(cudnnSetTensor4dDescriptor(yd.d, f, CUDNN_DATA_FLOAT, pc.n, pc.c, pc.ho(), pc.wo()) ==
                CUDNN_STATUS_SUCCESS);
        REQUIRE(cudnnSetPooling2dDescriptor(pd.d, mode, CUDNN_PROPAGATE_NAN, pc.k, pc.k, pc.pad, pc.pad, pc.stride,
                                            pc.stride) == CUDNN_STATUS_SUCCESS);
        const size_t nx = size_t(pc.n) * pc.c * pc.h * pc.w, ny = size_t(pc.n) * pc.c * pc.ho() * pc.wo();
        const std::vector<float> x = randu(nx, 41), dy = randu(ny, 42), y0 = randu(ny, 43), dx0 = randu(nx, 44);
        std::vector<double> yref(ny), dxref(nx, 0.0);
        for (int n = 0; n < pc.n; ++n)
          for (int c = 0; c < pc.c; ++c)
            for (int p = 0; p < pc.ho(); ++p)
              for (int q = 0; q < pc.wo(); ++q) {
                double best = -1e300, sum = 0;
                int cnt = 0;
                size_t arg = 0;
                for (int i = 0; i < pc.k; ++i)
                  for (int j = 0; j < pc.k; ++j) {
                    const int ih = p * pc.stride - pc.pad + i, iw = q * pc.stride - pc.pad + j;
                    if (ih < 0 || ih >= pc.h || iw < 0 || iw >= pc.w) continue;
                    const size_t m = mem(pc, pc.h, pc.w, n, c, ih, iw, nhwc);
                    if (x[m] > best) best = x[m], arg = m;
                    sum += x[m], ++cnt;
                  }
                const size_t ym = mem(pc, pc.ho(), pc.wo(), n, c, p, q, nhwc);
                const double div = mode == CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING ? pc.k * pc.k : cnt;
                yref[ym] = mode == CUDNN_POOLING_MAX ? best : sum / div;
                if (mode == CUDNN_POOLING_MAX) {
                  dxref[arg] += dy[ym];
                  continue;
                }
                for (int i = 0; i < pc.k; ++i)
                  for (int j = 0; j < pc.k; ++j) {
                    const int ih = p * pc.stride - pc.pad + i, iw = q * pc.stride - pc.pad + j;
                    if (ih >= 0 && ih < pc.h && iw >= 0 && iw < pc.w) dxref[mem(pc, pc.h, pc.w, n, c, ih, iw, nhwc)] += dy[ym] / div;
                  }
              }
        const float alpha = 1.5f, beta = -0.5f;
        std::vector<float> y = y0, dx = dx0;
        REQUIRE(cudnnPoolingForward(h.h, pd.d, &alpha, xd.d, x.data(), &beta, yd.d, y.data()) == CUDNN_STATUS_SUCCESS);
        std::vector<double> yexp(ny), dxexp(nx);
        for (size_t i = 0; i < ny; ++i) yexp[i] = alpha * yref[i] + beta * y0[i];
        check_close(to_double(y), yexp, 1e-6, 1e-5, "pool forward");
        // The backward receives the forward's plain output (alpha 1, beta 0).
        const float one = 1, zero = 0;
        std::vector<float> yplain(ny);
        REQUIRE(cudnnPoolingForward(h.h, pd.d, &one, xd.d, x.data(), &zero, yd.d, yplain.data()) == CUDNN_STATUS_SUCCESS);
        REQUIRE(cudnnPoolingBackward(h.h, pd.d, &alpha, yd.d, yplain.data(), yd.d, dy.data(), xd.d, x.data(), &beta,
                                     xd.d, dx.data()) == CUDNN_STATUS_SUCCESS);
        for (size_t i = 0; i < nx; ++i) dxexp[i] = alpha * dxref[i] + beta * dx0[i];
        check_close(to_double(dx), dxexp, 1e-6, 1e-5, "pool backward");
      }
}

TEST_CASE("pooling misuse: set-time BAD_PARAM, output dims, and lint for padding cuDNN accepts") {
  Handle h;
  Pooling pd;
  CHECK(cudnnSetPooling2dDescriptor(pd.d, CUDNN_POOLING_MAX, CUDNN_PROPAGATE_NAN, 0, 3, 1, 1, 2, 2) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetPooling2dDescriptor(pd.d, CUDNN_POOLING_MAX, CUDNN_PROPAGATE_NAN, 3, 3, 1, 1, 0, 2) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetPooling2dDescriptor(pd.d, cudnnPoolingMode_t(9), CUDNN_PROPAGATE_NAN, 3, 3, 1, 1, 2, 2) ==
        CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetPooling2dDescriptor(pd.d, CUDNN_POOLING_MAX, cudnnNanPropagation_t(2), 3, 3, 1, 1, 2, 2) ==
        CUDNN_STATUS_BAD_PARAM);
  REQUIRE(cudnnSetPooling2dDescriptor(pd.d, CUDNN_POOLING_MAX, CUDNN_PROPAGATE_NAN, 3, 3, 1, 1, 2, 2) ==
          CUDNN_STATUS_SUCCESS);
  Tensor xd, yd, ybad, yhalf;
  REQUIRE(cudnnSetTensor4dDescriptor(xd.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 2, 112, 112) == CUDNN_STATUS_SUCCESS);
  int n, c, ho, wo;
  REQUIRE(cudnnGetPooling2dForwardOutputDim(pd.d, xd.d, &n, &c, &ho, &wo) == CUDNN_STATUS_SUCCESS);
  CHECK((ho == 56 && wo == 56));  // ResNet's stem pool
  REQUIRE(cudnnSetTensor4dDescriptor(yd.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 2, 56, 56) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetTensor4dDescriptor(ybad.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 3, 56, 56) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetTensor4dDescriptor(yhalf.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_HALF, 1, 2, 56, 56) == CUDNN_STATUS_SUCCESS);
  std::vector<float> x(2 * 112 * 112, 1.f), y(3 * 56 * 56);
  const float one = 1, zero = 0;
  CHECK(cudnnPoolingForward(h.h, pd.d, &one, xd.d, x.data(), &zero, ybad.d, y.data()) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnPoolingForward(h.h, pd.d, &one, xd.d, x.data(), &zero, yhalf.d, y.data()) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnPoolingForward(h.h, pd.d, &one, xd.d, nullptr, &zero, yd.d, y.data()) == CUDNN_STATUS_BAD_PARAM);
  Tensor ywrong;
  REQUIRE(cudnnSetTensor4dDescriptor(ywrong.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 2, 55, 56) == CUDNN_STATUS_SUCCESS);
  CHECK(cudnnPoolingForward(h.h, pd.d, &one, xd.d, x.data(), &zero, ywrong.d, y.data()) == CUDNN_STATUS_NOT_SUPPORTED);
  // Negative padding is accepted at set time [OBS] but linted at compute time.
  LintThrows lint;
  REQUIRE(cudnnSetPooling2dDescriptor(pd.d, CUDNN_POOLING_MAX, CUDNN_PROPAGATE_NAN, 3, 3, -1, -1, 2, 2) ==
          CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnGetPooling2dForwardOutputDim(pd.d, xd.d, &n, &c, &ho, &wo) == CUDNN_STATUS_SUCCESS);
  CHECK(ho == 54);
  Tensor yneg;
  REQUIRE(cudnnSetTensor4dDescriptor(yneg.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 2, 54, 54) == CUDNN_STATUS_SUCCESS);
  CHECK_THROWS_WITH(cudnnPoolingForward(h.h, pd.d, &one, xd.d, x.data(), &zero, yneg.d, y.data()),
                    doctest::Contains("padding"));
}

TEST_CASE("AddTensor broadcasts a 1xCx1x1 bias with alpha/beta; SetTensor fills a strided tensor") {
  Handle h;
  Tensor bd, cd;
  REQUIRE(cudnnSetTensor4dDescriptor(bd.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 3, 1, 1) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetTensor4dDescriptor(cd.d, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 2, 3, 2, 2) == CUDNN_STATUS_SUCCESS);
  const float bias[3] = {1, 2, 3}, alpha = 2, beta = 1;
  std::vector<float> c(24);
  for (size_t i = 0; i < c.size(); ++i) c[i] = float(i);
  REQUIRE(cudnnAddTensor(h.h, &alpha, bd.d, bias, &beta, cd.d, c.data()) == CUDNN_STATUS_SUCCESS);
  for (size_t i = 0; i < c.size(); ++i) CHECK(c[i] == float(i) + 2 * bias[i % 3]);  // NHWC: channel = i % 3
  Tensor bad;
  REQUIRE(cudnnSetTensor4dDescriptor(bad.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 2, 1, 1) == CUDNN_STATUS_SUCCESS);
  CHECK(cudnnAddTensor(h.h, &alpha, bad.d, bias, &beta, cd.d, c.data()) == CUDNN_STATUS_BAD_PARAM);
  Tensor sd;
  REQUIRE(cudnnSetTensor4dDescriptorEx(sd.d, CUDNN_DATA_FLOAT, 1, 2, 2, 2, 16, 8, 4, 2) == CUDNN_STATUS_SUCCESS);
  std::vector<float> s(16, 0.f);
  const float v = 3.5f;
  REQUIRE(cudnnSetTensor(h.h, sd.d, s.data(), &v) == CUDNN_STATUS_SUCCESS);
  // Offsets c*8 + h*4 + w*2 are the even indices: the odd ones lie between elements and stay 0.
  for (size_t i = 0; i < s.size(); ++i) CHECK(s[i] == (i % 2 == 0 ? 3.5f : 0.f));
}
