// cuDNN stand-in convolution: numerics against hand-computed cases and direct loops written here
// (scatter form, independent of the stand-in's gather loops), NCHW and NHWC, groups, stride, padding,
// dilation, alpha/beta, bf16; algorithm queries and workspace; failure statuses of misuse.
#include <limits>

#include "tests/cuda/test_standin_util.h"

using namespace standin_test;

namespace {

struct Dims {
  int n, c, h, w;
  size_t count() const { return size_t(n) * c * h * w; }
};

// Element strides of a logical NCHW tensor stored NCHW or NHWC.
std::array<int, 4> strides_for(const Dims& d, bool nhwc) {
  if (nhwc) return {d.h * d.w * d.c, 1, d.w * d.c, d.c};
  return {d.c * d.h * d.w, d.h * d.w, d.w, 1};
}

size_t lin(const Dims& d, int n, int c, int h, int w) { return ((size_t(n) * d.c + c) * d.h + h) * d.w + w; }

// logical NCHW doubles -> memory floats in the given layout, and back.
std::vector<float> pack(const std::vector<double>& v, const Dims& d, bool nhwc) {
  const auto s = strides_for(d, nhwc);
  std::vector<float> out(d.count());
  for (int n = 0; n < d.n; ++n)
    for (int c = 0; c < d.c; ++c)
      for (int h = 0; h < d.h; ++h)
        for (int w = 0; w < d.w; ++w) out[size_t(n * s[0] + c * s[1] + h * s[2] + w * s[3])] = float(v[lin(d, n, c, h, w)]);
  return out;
}

std::vector<double> unpack(const std::vector<float>& m, const Dims& d, bool nhwc) {
  const auto s = strides_for(d, nhwc);
  std::vector<double> out(d.count());
  for (int n = 0; n < d.n; ++n)
    for (int c = 0; c < d.c; ++c)
      for (int h = 0; h < d.h; ++h)
        for (int w = 0; w < d.w; ++w) out[lin(d, n, c, h, w)] = m[size_t(n * s[0] + c * s[1] + h * s[2] + w * s[3])];
  return out;
}

void set_tensor(Tensor& t, const Dims& d, bool nhwc, cudnnDataType_t type = CUDNN_DATA_FLOAT) {
  const auto s = strides_for(d, nhwc);
  REQUIRE(cudnnSetTensor4dDescriptorEx(t.d, type, d.n, d.c, d.h, d.w, s[0], s[1], s[2], s[3]) == CUDNN_STATUS_SUCCESS);
}

struct Case {
  Dims x;
  int k, r, s, pad_h, pad_w, stride_h, stride_w, dil_h, dil_w, groups;
  Dims y() const {
    return {x.n, k, 1 + (x.h + 2 * pad_h - (dil_h * (r - 1) + 1)) / stride_h,
            1 + (x.w + 2 * pad_w - (dil_w * (s - 1) + 1)) / stride_w};
  }
  Dims wdims() const { return {k, x.c / groups, r, s}; }
};

// Scatter-form references: every (output, tap) pair contributes where the tap lands in x.
template <class Fn>
void for_each_tap(const Case& cs, Fn fn) {
  const Dims y = cs.y(), wd = cs.wdims();
  const int kg = cs.k / cs.groups;
  for (int n = 0; n < y.n; ++n)
    for (int k = 0; k < y.c; ++k)
      for (int p = 0; p < y.h; ++p)
        for (int q = 0; q < y.w; ++q)
          for (int c = 0; c < wd.c; ++c)
            for (int r = 0; r < cs.r; ++r)
              for (int s = 0; s < cs.s; ++s) {
                const int ih = p * cs.stride_h - cs.pad_h + r * cs.dil_h, iw = q * cs.stride_w - cs.pad_w + s * cs.dil_w;
                if (ih >= 0 && ih < cs.x.h && iw >= 0 && iw < cs.x.w)
                  fn(lin(cs.x, n, (k / kg) * wd.c + c, ih, iw), lin(wd, k, c, r, s), lin(y, n, k, p, q));
              }
}

// Filter memory: KCRS for NCHW, KRSC for NHWC (from logical KCRS doubles).
std::vector<float> pack_filter(const std::vector<double>& w, const Dims& d, bool krsc) { return pack(w, d, krsc); }

struct ConvRun {
  Case cs;
  bool nhwc;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  Handle h;
  Tensor xd, yd;
  Filter wd;
  Conv cd;
  explicit ConvRun(const Case& c, bool channels_last, cudnnMathType_t math = CUDNN_FMA_MATH) : cs(c), nhwc(channels_last) {
    set_tensor(xd, cs.x, nhwc);
    set_tensor(yd, cs.y(), nhwc);
    const Dims w = cs.wdims();
    REQUIRE(cudnnSetFilter4dDescriptor(wd.d, CUDNN_DATA_FLOAT, nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW, w.n, w.c,
                                       w.h, w.w) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetConvolution2dDescriptor(cd.d, cs.pad_h, cs.pad_w, cs.stride_h, cs.stride_w, cs.dil_h, cs.dil_w,
                                            CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetConvolutionGroupCount(cd.d, cs.groups) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetConvolutionMathType(cd.d, math) == CUDNN_STATUS_SUCCESS);
  }
};

const Case kCases[] = {
    {{2, 4, 7, 6}, 6, 3, 3, 1, 1, 2, 2, 1, 1, 2},  // groups, stride 2, pad 1, odd sizes
    {{1, 3, 9, 10}, 5, 3, 3, 1, 1, 2, 2, 2, 2, 1},  // dilation 2
    {{2, 3, 5, 5}, 4, 1, 1, 0, 0, 2, 2, 1, 1, 1},   // 1x1 downsample
    {{1, 2, 6, 5}, 3, 2, 3, 0, 1, 1, 1, 1, 1, 1},   // rectangular filter, asymmetric pad
};

}  // namespace

TEST_CASE("conv forward: hand-computed 3x3 input, 2x2 filter, cross-correlation and convolution") {
  Handle h;
  Tensor xd, yd;
  Filter wd;
  Conv cd;
  REQUIRE(cudnnSetTensor4dDescriptor(xd.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 3, 3) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetTensor4dDescriptor(yd.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 2, 2) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetFilter4dDescriptor(wd.d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 1, 1, 2, 2) == CUDNN_STATUS_SUCCESS);
  const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[4] = {1, 0, 0, -1};
  float y[4];
  const float one = 1, zero = 0;
  for (auto [mode, expect] : {std::pair{CUDNN_CROSS_CORRELATION, -4.f}, std::pair{CUDNN_CONVOLUTION, 4.f}}) {
    REQUIRE(cudnnSetConvolution2dDescriptor(cd.d, 0, 0, 1, 1, 1, 1, mode, CUDNN_DATA_FLOAT) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetConvolutionMathType(cd.d, CUDNN_FMA_MATH) == CUDNN_STATUS_SUCCESS);
    std::fill(y, y + 4, std::numeric_limits<float>::quiet_NaN());  // beta = 0 must not read y
    REQUIRE(cudnnConvolutionForward(h.h, &one, xd.d, x, wd.d, w, cd.d, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                                    nullptr, 0, &zero, yd.d, y) == CUDNN_STATUS_SUCCESS);
    for (float v : y) CHECK(v == expect);  // x[p,q] - x[p+1,q+1] = -4 (flipped filter: +4)
  }
  // Backward bias: db[k] = sum of dy over n, h, w, blended: 2*10 + 0.5*4 = 22.
  Tensor dbd;
  REQUIRE(cudnnSetTensor4dDescriptor(dbd.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 1, 1) == CUDNN_STATUS_SUCCESS);
  const float dy[4] = {1, 2, 3, 4}, two = 2, half = 0.5f;
  float db = 4;
  REQUIRE(cudnnConvolutionBackwardBias(h.h, &two, yd.d, dy, &half, dbd.d, &db) == CUDNN_STATUS_SUCCESS);
  CHECK(db == 22.f);
}

TEST_CASE("conv forward/backward data/backward filter vs direct loops, NCHW and NHWC, alpha/beta") {
  for (const Case& cs : kCases)
    for (bool nhwc : {false, true}) {
      CAPTURE(nhwc);
      CAPTURE(cs.x.c);
      ConvRun run(cs, nhwc);
      const Dims yd = cs.y(), wdim = cs.wdims();
      const std::vector<double> x = to_double(randu(cs.x.count(), 1)), w = to_double(randu(wdim.count(), 2));
      const std::vector<double> dy = to_double(randu(yd.count(), 3)), y0 = to_double(randu(yd.count(), 4));
      const std::vector<double> dx0 = to_double(randu(cs.x.count(), 5)), dw0 = to_double(randu(wdim.count(), 6));
      std::vector<double> yref(yd.count()), dxref(cs.x.count()), dwref(wdim.count());
      for_each_tap(cs, [&](size_t xi, size_t wi, size_t yi) {
        yref[yi] += x[xi] * w[wi];
        dxref[xi] += dy[yi] * w[wi];
        dwref[wi] += dy[yi] * x[xi];
      });
      const float alpha = 0.5f, beta = 0.25f;
      for (size_t i = 0; i < yref.size(); ++i) yref[i] = alpha * yref[i] + beta * double(float(y0[i]));
      for (size_t i = 0; i < dxref.size(); ++i) dxref[i] = alpha * dxref[i] + beta * double(float(dx0[i]));
      for (size_t i = 0; i < dwref.size(); ++i) dwref[i] = alpha * dwref[i] + beta * double(float(dw0[i]));

      const std::vector<float> xm = pack(x, cs.x, nhwc), wm = pack_filter(w, wdim, nhwc), dym = pack(dy, yd, nhwc);
      std::vector<float> ym = pack(y0, yd, nhwc), dxm = pack(dx0, cs.x, nhwc), dwm = pack_filter(dw0, wdim, nhwc);
      size_t ws = 0;
      REQUIRE(cudnnGetConvolutionForwardWorkspaceSize(run.h.h, run.xd.d, run.wd.d, run.cd.d, run.yd.d,
                                                      CUDNN_CONVOLUTION_FWD_ALGO_GEMM, &ws) == CUDNN_STATUS_SUCCESS);
      CHECK(ws > 0);  // im2col-sized
      std::vector<char> work(ws);
      REQUIRE(cudnnConvolutionForward(run.h.h, &alpha, run.xd.d, xm.data(), run.wd.d, wm.data(), run.cd.d,
                                      CUDNN_CONVOLUTION_FWD_ALGO_GEMM, work.data(), ws, &beta, run.yd.d,
                                      ym.data()) == CUDNN_STATUS_SUCCESS);
      check_close(unpack(ym, yd, nhwc), yref, 1e-5, 1e-5, "forward");

      REQUIRE(cudnnGetConvolutionBackwardDataWorkspaceSize(run.h.h, run.wd.d, run.yd.d, run.cd.d, run.xd.d,
                                                           CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, &ws) == CUDNN_STATUS_SUCCESS);
      work.assign(ws, 0);
      REQUIRE(cudnnConvolutionBackwardData(run.h.h, &alpha, run.wd.d, wm.data(), run.yd.d, dym.data(), run.cd.d,
                                           CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, work.data(), ws, &beta, run.xd.d,
                                           dxm.data()) == CUDNN_STATUS_SUCCESS);
      check_close(unpack(dxm, cs.x, nhwc), dxref, 1e-5, 1e-5, "backward data");

      REQUIRE(cudnnGetConvolutionBackwardFilterWorkspaceSize(run.h.h, run.xd.d, run.yd.d, run.cd.d, run.wd.d,
                                                             CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
                                                             &ws) == CUDNN_STATUS_SUCCESS);
      work.assign(ws, 0);
      REQUIRE(cudnnConvolutionBackwardFilter(run.h.h, &alpha, run.xd.d, xm.data(), run.yd.d, dym.data(), run.cd.d,
                                             CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, work.data(), ws, &beta, run.wd.d,
                                             dwm.data()) == CUDNN_STATUS_SUCCESS);
      check_close(unpack(dwm, wdim, nhwc), dwref, 1e-5, 1e-5, "backward filter");
    }
}

TEST_CASE("conv forward bf16 (fp32 compute) within bf16 tolerance; beta = 0 overwrites NaN") {
  const Case cs{{2, 4, 6, 6}, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  const Dims yd = cs.y(), wdim = cs.wdims();
  Handle h;
  Tensor xd, ydsc;
  Filter wd;
  Conv cd;
  REQUIRE(cudnnSetTensor4dDescriptor(xd.d, CUDNN_TENSOR_NHWC, CUDNN_DATA_BFLOAT16, 2, 4, 6, 6) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetTensor4dDescriptor(ydsc.d, CUDNN_TENSOR_NHWC, CUDNN_DATA_BFLOAT16, 2, 8, 6, 6) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetFilter4dDescriptor(wd.d, CUDNN_DATA_BFLOAT16, CUDNN_TENSOR_NHWC, 8, 4, 3, 3) == CUDNN_STATUS_SUCCESS);
  // A BFLOAT16 compute type is rejected at set time; FLOAT is the pseudo-bf16 config.
  CHECK(cudnnSetConvolution2dDescriptor(cd.d, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_BFLOAT16) ==
        CUDNN_STATUS_BAD_PARAM);
  REQUIRE(cudnnSetConvolution2dDescriptor(cd.d, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) ==
          CUDNN_STATUS_SUCCESS);
  std::vector<double> x = to_double(randu(cs.x.count(), 11)), w = to_double(randu(wdim.count(), 12));
  for (double& v : x) v = from_bf16(to_bf16(float(v)));
  for (double& v : w) v = from_bf16(to_bf16(float(v)));
  std::vector<double> yref(yd.count());
  for_each_tap(cs, [&](size_t xi, size_t wi, size_t yi) { yref[yi] += x[xi] * w[wi]; });
  auto to_mem = [](const std::vector<float>& f) {
    std::vector<uint16_t> m(f.size());
    for (size_t i = 0; i < f.size(); ++i) m[i] = to_bf16(f[i]);
    return m;
  };
  const std::vector<uint16_t> xm = to_mem(pack(x, cs.x, true)), wm = to_mem(pack(w, wdim, true));
  std::vector<uint16_t> ym(yd.count(), 0x7fc0);  // bf16 NaN
  const float one = 1, zero = 0;
  REQUIRE(cudnnConvolutionForward(h.h, &one, xd.d, xm.data(), wd.d, wm.data(), cd.d,
                                  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, ydsc.d,
                                  ym.data()) == CUDNN_STATUS_SUCCESS);
  std::vector<float> yf(ym.size());
  for (size_t i = 0; i < ym.size(); ++i) yf[i] = from_bf16(ym[i]);
  // bf16 output: one rounding of an exact fp32-accumulated sum, so 2^-8 relative.
  check_close(unpack(yf, yd, true), yref, 1e-6, 1.0 / 256, "bf16 forward");
}

TEST_CASE("conv: default math rounds fp32 inputs to TF32, CUDNN_FMA_MATH does not") {
  Handle h;
  Tensor xd, yd;
  Filter wd;
  Conv cd;
  REQUIRE(cudnnSetTensor4dDescriptor(xd.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 1, 1) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetTensor4dDescriptor(yd.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 1, 1) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetFilter4dDescriptor(wd.d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 1, 1, 1, 1) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetConvolution2dDescriptor(cd.d, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) ==
          CUDNN_STATUS_SUCCESS);
  const float x = 1.f + 0x1p-20f, w = 1.f, one = 1, zero = 0;  // 2^-20 is below TF32's 10 mantissa bits
  float y = 0;
  REQUIRE(cudnnConvolutionForward(h.h, &one, xd.d, &x, wd.d, &w, cd.d, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                                  nullptr, 0, &zero, yd.d, &y) == CUDNN_STATUS_SUCCESS);
  CHECK(y == 1.f);
  REQUIRE(cudnnSetConvolutionMathType(cd.d, CUDNN_FMA_MATH) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnConvolutionForward(h.h, &one, xd.d, &x, wd.d, &w, cd.d, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                                  nullptr, 0, &zero, yd.d, &y) == CUDNN_STATUS_SUCCESS);
  CHECK(y == x);
}

TEST_CASE("conv algorithm queries: v7/Find list usable algos first, memory = workspace size") {
  ConvRun run(kCases[0], false);
  int max_count = 0;
  REQUIRE(cudnnGetConvolutionForwardAlgorithmMaxCount(run.h.h, &max_count) == CUDNN_STATUS_SUCCESS);
  CHECK(max_count == CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
  std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(static_cast<size_t>(max_count));
  int returned = 0;
  REQUIRE(cudnnGetConvolutionForwardAlgorithm_v7(run.h.h, run.xd.d, run.wd.d, run.cd.d, run.yd.d, max_count, &returned,
                                                 perf.data()) == CUDNN_STATUS_SUCCESS);
  REQUIRE(returned == max_count);
  CHECK(perf[0].status == CUDNN_STATUS_SUCCESS);
  CHECK(perf[0].determinism == CUDNN_DETERMINISTIC);
  CHECK(perf[0].mathType == CUDNN_FMA_MATH);
  bool seen_bad = false;
  for (int i = 0; i < returned; ++i) {
    if (perf[size_t(i)].status != CUDNN_STATUS_SUCCESS) {
      seen_bad = true;
      continue;
    }
    CHECK_FALSE(seen_bad);  // usable entries come first
    size_t ws = 1;
    REQUIRE(cudnnGetConvolutionForwardWorkspaceSize(run.h.h, run.xd.d, run.wd.d, run.cd.d, run.yd.d, perf[size_t(i)].algo,
                                                    &ws) == CUDNN_STATUS_SUCCESS);
    CHECK(ws == perf[size_t(i)].memory);
  }
  CHECK(seen_bad);  // stride 2 rules out FFT and Winograd; DIRECT is never available
  // Stride-2 case: Winograd's workspace query is NOT_SUPPORTED.
  size_t ws = 0;
  CHECK(cudnnGetConvolutionForwardWorkspaceSize(run.h.h, run.xd.d, run.wd.d, run.cd.d, run.yd.d,
                                                CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, &ws) == CUDNN_STATUS_NOT_SUPPORTED);
  cudnnConvolutionBwdDataAlgoPerf_t bd[2];
  REQUIRE(cudnnFindConvolutionBackwardDataAlgorithm(run.h.h, run.wd.d, run.yd.d, run.cd.d, run.xd.d, 2, &returned, bd) ==
          CUDNN_STATUS_SUCCESS);
  CHECK(returned == 2);
  CHECK(bd[0].determinism == CUDNN_DETERMINISTIC);
  cudnnConvolutionBwdFilterAlgoPerf_t bf[1];
  REQUIRE(cudnnGetConvolutionBackwardFilterAlgorithm_v7(run.h.h, run.xd.d, run.yd.d, run.cd.d, run.wd.d, 1, &returned,
                                                        bf) == CUDNN_STATUS_SUCCESS);
  CHECK(returned == 1);
  CHECK(bf[0].status == CUDNN_STATUS_SUCCESS);
  CHECK(cudnnGetConvolutionForwardAlgorithm_v7(run.h.h, run.xd.d, run.wd.d, run.cd.d, run.yd.d, 0, &returned,
                                               perf.data()) == CUDNN_STATUS_BAD_PARAM);
}

TEST_CASE("conv misuse fails like cuDNN") {
  const Case cs = kCases[0];
  ConvRun run(cs, false);
  const Dims yd = cs.y();
  std::vector<float> x(cs.x.count(), 1.f), w(cs.wdims().count(), 1.f), y(yd.count()), dx(cs.x.count());
  std::vector<float> dw(cs.wdims().count());
  const float one = 1, zero = 0;
  const auto fwd = [&](cudnnTensorDescriptor_t xdesc, cudnnFilterDescriptor_t wdesc, cudnnTensorDescriptor_t ydesc,
                       cudnnConvolutionFwdAlgo_t algo, void* ws, size_t wsb) {
    return cudnnConvolutionForward(run.h.h, &one, xdesc, x.data(), wdesc, w.data(), run.cd.d, algo, ws, wsb, &zero,
                                   ydesc, y.data());
  };
  const auto ok_algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  CHECK(fwd(run.xd.d, run.wd.d, run.yd.d, ok_algo, nullptr, 0) == CUDNN_STATUS_SUCCESS);

  SUBCASE("workspace smaller than reported, or NULL with a size") {
    size_t need = 0;
    REQUIRE(cudnnGetConvolutionForwardWorkspaceSize(run.h.h, run.xd.d, run.wd.d, run.cd.d, run.yd.d,
                                                    CUDNN_CONVOLUTION_FWD_ALGO_GEMM, &need) == CUDNN_STATUS_SUCCESS);
    std::vector<char> ws(need);
    CHECK(fwd(run.xd.d, run.wd.d, run.yd.d, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, ws.data(), need - 1) == CUDNN_STATUS_BAD_PARAM);
    CHECK(fwd(run.xd.d, run.wd.d, run.yd.d, ok_algo, nullptr, 64) == CUDNN_STATUS_BAD_PARAM);
    CHECK(fwd(run.xd.d, run.wd.d, run.yd.d, CUDNN_CONVOLUTION_FWD_ALGO_DIRECT, nullptr, 0) == CUDNN_STATUS_NOT_SUPPORTED);
    CHECK(fwd(run.xd.d, run.wd.d, run.yd.d, cudnnConvolutionFwdAlgo_t(42), nullptr, 0) == CUDNN_STATUS_BAD_PARAM);
  }
  SUBCASE("output dims differ from GetConvolution2dForwardOutputDim") {
    int n, c, h, ww;
    REQUIRE(cudnnGetConvolution2dForwardOutputDim(run.cd.d, run.xd.d, run.wd.d, &n, &c, &h, &ww) == CUDNN_STATUS_SUCCESS);
    CHECK((n == yd.n && c == yd.c && h == yd.h && ww == yd.w));
    Tensor bad;
    REQUIRE(cudnnSetTensor4dDescriptor(bad.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h + 1, ww) == CUDNN_STATUS_SUCCESS);
    CHECK(fwd(run.xd.d, run.wd.d, bad.d, ok_algo, nullptr, 0) == CUDNN_STATUS_NOT_SUPPORTED);
    CHECK(cudnnConvolutionBackwardData(run.h.h, &one, run.wd.d, w.data(), bad.d, y.data(), run.cd.d,
                                       CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, nullptr, 0, &zero, run.xd.d,
                                       dx.data()) == CUDNN_STATUS_BAD_PARAM);
    CHECK(cudnnConvolutionBackwardFilter(run.h.h, &one, run.xd.d, x.data(), bad.d, y.data(), run.cd.d,
                                         CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, nullptr, 0, &zero, run.wd.d,
                                         dw.data()) == CUDNN_STATUS_NOT_SUPPORTED);
  }
  SUBCASE("dtype mismatch, channel mismatch, layout mismatch, negative strides, NULL pointers") {
    Tensor half_y;
    REQUIRE(cudnnSetTensor4dDescriptor(half_y.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_HALF, yd.n, yd.c, yd.h, yd.w) ==
            CUDNN_STATUS_SUCCESS);
    CHECK(fwd(run.xd.d, run.wd.d, half_y.d, ok_algo, nullptr, 0) == CUDNN_STATUS_BAD_PARAM);
    Filter wrong_c, krsc;
    REQUIRE(cudnnSetFilter4dDescriptor(wrong_c.d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 6, 3, 3, 3) == CUDNN_STATUS_SUCCESS);
    CHECK(fwd(run.xd.d, wrong_c.d, run.yd.d, ok_algo, nullptr, 0) == CUDNN_STATUS_BAD_PARAM);
    REQUIRE(cudnnSetFilter4dDescriptor(krsc.d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, 6, 2, 3, 3) == CUDNN_STATUS_SUCCESS);
    CHECK(fwd(run.xd.d, krsc.d, run.yd.d, ok_algo, nullptr, 0) == CUDNN_STATUS_NOT_SUPPORTED);
    Tensor neg;
    REQUIRE(cudnnSetTensor4dDescriptorEx(neg.d, CUDNN_DATA_FLOAT, 2, 4, 7, 6, 168, 42, 6, -1) == CUDNN_STATUS_SUCCESS);
    CHECK(fwd(neg.d, run.wd.d, run.yd.d, ok_algo, nullptr, 0) == CUDNN_STATUS_NOT_SUPPORTED);
    CHECK(cudnnConvolutionForward(run.h.h, &one, run.xd.d, nullptr, run.wd.d, w.data(), run.cd.d, ok_algo, nullptr, 0,
                                  &zero, run.yd.d, y.data()) == CUDNN_STATUS_BAD_PARAM);
    CHECK(cudnnConvolutionForward(run.h.h, nullptr, run.xd.d, x.data(), run.wd.d, w.data(), run.cd.d, ok_algo, nullptr,
                                  0, &zero, run.yd.d, y.data()) == CUDNN_STATUS_BAD_PARAM);
    CHECK(cudnnConvolutionForward(nullptr, &one, run.xd.d, x.data(), run.wd.d, w.data(), run.cd.d, ok_algo, nullptr, 0,
                                  &zero, run.yd.d, y.data()) == CUDNN_STATUS_BAD_PARAM);
  }
  SUBCASE("backward bias with a bias descriptor that is not 1xKx1x1 or has another dtype") {
    Tensor db_bad, db_half;
    REQUIRE(cudnnSetTensor4dDescriptor(db_bad.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, yd.c, 2, 1) == CUDNN_STATUS_SUCCESS);
    REQUIRE(cudnnSetTensor4dDescriptor(db_half.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_HALF, 1, yd.c, 1, 1) == CUDNN_STATUS_SUCCESS);
    std::vector<float> db(size_t(yd.c) * 2);
    CHECK(cudnnConvolutionBackwardBias(run.h.h, &one, run.yd.d, y.data(), &zero, db_bad.d, db.data()) ==
          CUDNN_STATUS_BAD_PARAM);
    CHECK(cudnnConvolutionBackwardBias(run.h.h, &one, run.yd.d, y.data(), &zero, db_half.d, db.data()) ==
          CUDNN_STATUS_BAD_PARAM);
  }
}

TEST_CASE("conv: pointer validator sees exact extents; call log records one entry; workspace is scribbled") {
  ConvRun run(kCases[2], true);
  const Case& cs = kCases[2];
  std::vector<float> x(cs.x.count(), 1.f), w(cs.wdims().count(), 1.f), y(cs.y().count());
  std::vector<std::pair<const void*, size_t>> seen;
  rtune::sim::set_device_pointer_validator([&](const void* p, size_t n, const char*) { seen.emplace_back(p, n); });
  rtune::sim::call_log_enable(true);
  rtune::sim::call_log_clear();
  size_t ws = 0;
  REQUIRE(cudnnGetConvolutionForwardWorkspaceSize(run.h.h, run.xd.d, run.wd.d, run.cd.d, run.yd.d,
                                                  CUDNN_CONVOLUTION_FWD_ALGO_GEMM, &ws) == CUDNN_STATUS_SUCCESS);
  std::vector<float> work(ws / sizeof(float) + 1, 7.f);
  const float one = 1, zero = 0;
  REQUIRE(cudnnConvolutionForward(run.h.h, &one, run.xd.d, x.data(), run.wd.d, w.data(), run.cd.d,
                                  CUDNN_CONVOLUTION_FWD_ALGO_GEMM, work.data(), ws, &zero, run.yd.d,
                                  y.data()) == CUDNN_STATUS_SUCCESS);
  rtune::sim::set_device_pointer_validator({});
  const auto log = rtune::sim::call_log_take();
  rtune::sim::call_log_enable(false);
  REQUIRE(log.size() == 1);
  CHECK(log[0].function == "cudnnConvolutionForward");
  CHECK(log[0].detail.find("algo 2") != std::string::npos);
  REQUIRE(seen.size() == 4);
  CHECK(seen[0] == std::pair<const void*, size_t>(x.data(), x.size() * 4));
  CHECK(seen[1] == std::pair<const void*, size_t>(w.data(), w.size() * 4));
  CHECK(seen[2] == std::pair<const void*, size_t>(y.data(), y.size() * 4));
  CHECK(seen[3] == std::pair<const void*, size_t>(work.data(), ws));
  CHECK(std::isnan(work[0]));  // the workspace holds nothing useful after the call
  // A validator that rejects the range stops the call before any write.
  rtune::sim::set_device_pointer_validator([](const void*, size_t, const char* what) {
    throw std::runtime_error(std::string("not device memory: ") + what);
  });
  CHECK_THROWS(cudnnConvolutionForward(run.h.h, &one, run.xd.d, x.data(), run.wd.d, w.data(), run.cd.d,
                                       CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, run.yd.d, y.data()));
  rtune::sim::set_device_pointer_validator({});
}

TEST_CASE("conv lint: a descriptor whose Set failed, and overlapping output strides") {
  LintThrows lint;
  ConvRun run(kCases[2], false);
  const Case& cs = kCases[2];
  std::vector<float> x(cs.x.count(), 1.f), w(cs.wdims().count(), 1.f), y(cs.y().count() * 4);
  const float one = 1, zero = 0;
  Tensor overlap;
  const Dims yd = cs.y();
  REQUIRE(cudnnSetTensor4dDescriptorEx(overlap.d, CUDNN_DATA_FLOAT, yd.n, yd.c, yd.h, yd.w, 1, 1, 1, 1) ==
          CUDNN_STATUS_SUCCESS);  // accepted at set time [OBS]
  CHECK_THROWS_WITH(cudnnConvolutionForward(run.h.h, &one, run.xd.d, x.data(), run.wd.d, w.data(), run.cd.d,
                                            CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, overlap.d,
                                            y.data()),
                    doctest::Contains("overlap"));
  CHECK(cudnnSetTensor4dDescriptor(run.xd.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 0, 3, 5, 5) == CUDNN_STATUS_BAD_PARAM);
  CHECK_THROWS_WITH(cudnnConvolutionForward(run.h.h, &one, run.xd.d, x.data(), run.wd.d, w.data(), run.cd.d,
                                            CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, nullptr, 0, &zero, run.yd.d,
                                            y.data()),
                    doctest::Contains("failed Set"));
}
