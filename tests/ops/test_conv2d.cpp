// conv2d (kernels/cpu/conv2d.cpp, kernels/cuda/conv2d.cu): hand-computed forward values and float32
// against float64; float64 central-difference gradient checks over a geometry table (odd sizes,
// stride 2, padding, dilation, 1×1) and non-contiguous / channels-last inputs; with a CUDA backend,
// cuDNN against the CPU oracle (NaN-prefilled outputs; tolerance fp32 1e-4 / 1e-5: cuDNN against
// Eigen's float GEMMs, FMA math, no TF32).
#include "engine/autograd.h"
#include "engine/functional.h"
#include "kernels/ops.h"
#include "tests/ops/ops_test_util.h"

using namespace rtune;
using namespace rtune::opstest;

// ----------------------------------------------------------------------------------------- forward

TEST_CASE("conv2d: hand-computed 3x3 with padding, stride 2, bias") {
  // x = 1..16 as 4×4, w = all ones 3×3, pad 1: each output is the sum of the 3×3 neighbourhood.
  std::vector<double> xv(16);
  for (int i = 0; i < 16; ++i) xv[size_t(i)] = i + 1;
  Tensor x = from_vector(xv, {1, 1, 4, 4}, DType::f64);
  Tensor w = ones({1, 1, 3, 3}, {DType::f64});
  Tensor y = conv2d(x, w, Tensor(), {1, 1, 1, 1});
  CHECK(y.to_vector<double>() == std::vector<double>{14, 24, 30, 22, 33, 54, 63, 45, 57, 90, 99, 69, 46, 72, 78, 54});
  Tensor y2 = conv2d(x, w, from_vector({0.5}, {1}, DType::f64), {2, 2, 1, 1});
  CHECK(y2.to_vector<double>() == std::vector<double>{14.5, 30.5, 57.5, 99.5});
  // Two input channels, two output channels, 1×1: a per-pixel matrix product.
  Tensor x2 = from_vector({1, 2, 3, 4, 10, 20, 30, 40}, {1, 2, 2, 2}, DType::f64);
  Tensor w2 = from_vector({1, 1, 2, -1}, {2, 2, 1, 1}, DType::f64);
  CHECK(conv2d(x2, w2, Tensor(), {}).to_vector<double>() == std::vector<double>{11, 22, 33, 44, -8, -16, -24, -32});
}

TEST_CASE("float32 ops match float64 ops to float32 precision") {
  Rng r(5);
  Tensor x = randn({2, 3, 9, 9}, r, {DType::f64}), w = randn({4, 3, 3, 3}, r, {DType::f64});
  Tensor y64 = conv2d(x, w, Tensor(), {2, 2, 1, 1});
  Tensor y32 = conv2d(x.to(DType::f32), w.to(DType::f32), Tensor(), {2, 2, 1, 1});
  CHECK_CLOSE(y32, y64, 1e-5, 1e-5);
}

// ------------------------------------------------------------------------------ gradient checks

TEST_CASE("gradcheck conv2d: geometry table") {
  struct Case {
    Shape x, w;
    Conv2dArgs a;
    bool bias;
    const char* what;
  };
  const Case cases[] = {
      {{2, 3, 7, 6}, {4, 3, 3, 3}, {1, 1, 1, 1, 1, 1}, true, "3x3 same padding, odd sizes"},
      {{2, 3, 9, 7}, {5, 3, 3, 3}, {2, 2, 1, 1, 1, 1}, false, "3x3 stride 2 (ResNet downsampling)"},
      {{1, 2, 11, 10}, {3, 2, 7, 7}, {2, 2, 3, 3, 1, 1}, false, "7x7 stride 2 pad 3 (ResNet stem)"},
      {{3, 4, 5, 5}, {6, 4, 1, 1}, {1, 1, 0, 0, 1, 1}, true, "1x1 pointwise"},
      {{2, 4, 7, 7}, {3, 4, 1, 1}, {2, 2, 0, 0, 1, 1}, false, "1x1 stride 2 (downsample branch)"},
      {{1, 2, 9, 8}, {2, 2, 3, 2}, {1, 2, 2, 0, 2, 1}, true, "rectangular kernel, dilation 2, asymmetric"},
  };
  uint64_t seed = 1;
  for (const Case& c : cases) {
    CAPTURE(c.what);
    Rng r(seed++);
    Tensor x = rn(c.x, r), w = rn(c.w, r), b = c.bias ? rn({c.w[0]}, r) : Tensor();
    CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], c.a); }, {x, w, b},
                    {true, true, c.bias}, seed);
  }
}

TEST_CASE("gradcheck conv2d: non-contiguous and channels-last inputs") {
  Rng r(11);
  Tensor base = rn({2, 5, 6, 3}, r);             // N H W C in memory
  Tensor x_perm = base.permute({0, 3, 1, 2});     // N C H W view with channels-last strides
  CHECK(x_perm.is_contiguous(MemoryFormat::channels_last));
  Tensor w = rn({4, 3, 3, 3}, r);
  Conv2dArgs a{2, 1, 1, 0, 1, 1};
  CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], Tensor(), a); }, {x_perm, w},
                  {true, true}, 12);
  Tensor wide = rn({2, 3, 5, 12}, r);
  Tensor x_narrow = wide.narrow(3, 2, 6);  // strided along W
  CHECK_FALSE(x_narrow.is_contiguous());
  CHECK_GRADCHECK([&](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], Tensor(), a); }, {x_narrow, w},
                  {true, true}, 13);
}

#if defined(RTUNE_TEST_HAS_CUDA)
// ------------------------------------------------------------------------------------ CPU vs CUDA

using namespace rtune::cudatest;
namespace K = rtune::kernels;

namespace {
struct ConvCase {
  Shape x, w;
  K::Conv2dArgs a;
  const char* name;
};
const ConvCase kConvCases[] = {
    {{2, 3, 7, 9}, {4, 3, 3, 3}, {1, 1, 1, 1, 1, 1}, "3x3 s1 p1 odd sizes"},
    {{2, 5, 9, 8}, {6, 5, 3, 3}, {2, 2, 1, 1, 1, 1}, "3x3 s2 p1"},
    {{3, 4, 7, 7}, {8, 4, 1, 1}, {2, 2, 0, 0, 1, 1}, "1x1 s2 downsample"},
    {{1, 3, 11, 10}, {4, 3, 7, 7}, {2, 2, 3, 3, 1, 1}, "7x7 s2 p3 stem"},
    {{2, 3, 8, 8}, {5, 3, 3, 3}, {1, 1, 2, 2, 2, 2}, "3x3 dilation 2"},
    {{2, 6, 5, 5}, {3, 6, 1, 1}, {1, 1, 0, 0, 1, 1}, "1x1 s1 pointwise"},
};
}  // namespace

CUDA_TEST_CASE("conv2d forward/backward: cuDNN == CPU (fp32, NCHW, channels-last, strided input)") {
  Rng r(5);
  for (const ConvCase& c : kConvCases)
    for (MemoryFormat fmt : {kNCHW, kNHWC})
      for (bool strided_x : {false, true}) {
        CAPTURE(c.name);
        CAPTURE(int(fmt));
        CAPTURE(strided_x);
        Tensor x = strided_x ? strided(c.x, r) : randn_f(c.x, r, fmt);
        Tensor w = randn_f(c.w, r, fmt), bias = randn_f({c.w[0]}, r);
        Shape ys = K::conv2d_out_shape(c.x, c.w, c.a);
        Tensor y = empty(ys), dy = nan_out(ys, DType::f32, fmt);
        K::conv2d_forward(x, w, bias, c.a, y);
        K::conv2d_forward(dev(x), dev(w), dev(bias), c.a, dy);
        check_dev(dy, y, 1e-4, 1e-5);
        Tensor y0 = empty(ys), dy0 = nan_out(ys, DType::f32, fmt);
        K::conv2d_forward(x, w, Tensor(), c.a, y0);
        K::conv2d_forward(dev(x), dev(w), Tensor(), c.a, dy0);
        check_dev(dy0, y0, 1e-4, 1e-5);

        Tensor gy = randn_f(ys, r, fmt);
        Tensor gx = empty(c.x), dgx = nan_out(c.x, DType::f32, fmt);
        K::conv2d_backward_input(gy, w, c.a, gx);
        K::conv2d_backward_input(dev(gy), dev(w), c.a, dgx);
        check_dev(dgx, gx, 1e-4, 1e-5);
        Tensor gw = empty(c.w), dgw = nan_out(c.w);
        K::conv2d_backward_weight(gy, x, c.a, gw);
        K::conv2d_backward_weight(dev(gy), dev(x), c.a, dgw);
        check_dev(dgw, gw, 1e-4, 1e-5);
        Tensor gb = empty({c.w[0]}), dgb = nan_out({c.w[0]});
        K::conv2d_backward_bias(gy, gb);
        K::conv2d_backward_bias(dev(gy), dgb);
        check_dev(dgb, gb, 1e-5, 1e-5);
      }
}

CUDA_TEST_CASE("conv2d: float64 through cuDNN's DOUBLE config") {
  Rng r(6);
  const ConvCase& c = kConvCases[1];
  Tensor x = randn_cpu(c.x, r, DType::f64), w = randn_cpu(c.w, r, DType::f64);
  Shape ys = K::conv2d_out_shape(c.x, c.w, c.a);
  Tensor y = empty(ys, {DType::f64}), dy = nan_out(ys, DType::f64);
  K::conv2d_forward(x, w, Tensor(), c.a, y);
  K::conv2d_forward(dev(x), dev(w), Tensor(), c.a, dy);
  check_dev(dy, y, 1e-12, 1e-12);
}
#endif  // RTUNE_TEST_HAS_CUDA

// ------------------------------------------------------------------------------- oneDNN vs Eigen

#include <cmath>
#include <cstring>
#include <optional>
#include "kernels/cpu/backend.h"

namespace {
namespace K = rtune::kernels;
using rtune::cpu::Backend;

// Restores the process-wide CPU backend when a test case ends, whatever it set.
struct BackendScope {
  Backend saved = rtune::cpu::backend();
  ~BackendScope() { rtune::cpu::set_backend(saved); }
};

Tensor in_format(const Tensor& t, MemoryFormat fmt) {
  Tensor y = empty(t.shape(), {t.dtype(), t.device(), fmt});
  y.copy_(t);
  return y;
}
Tensor nan_like(const Shape& s, MemoryFormat fmt) {  // an output a kernel never wrote fails the check
  return in_format(full(s, std::nan(""), {DType::f32}), fmt);
}
Tensor abs64(const Tensor& t) {
  std::vector<double> v = t.to_vector<double>();
  for (double& e : v) e = std::fabs(e);
  return from_vector(v, t.shape(), DType::f64);
}

// Every element of a float32 convolution result is a sum of n products (n: the reduction length) that
// both backends form in float32 with FMA, in different orders and blockings. Each differs from the exact
// sum by at most gamma_n * sum|x||w| (gamma_n = n*u/(1-n*u), u = eps_f32/2: Higham, "Accuracy and
// Stability", 3.1, for any summation order), so the two differ by at most 2 * gamma_n * sum|x||w|
// ~= n * eps_f32 * sum|x||w|. The sums of |x||w| are the same convolution in float64 on absolute values.
// No Winograd (convolution_direct), so the bound holds. It is not loose to the point of passing anything:
// shrunk 64x, some elements of these cases fail it.
void check_within_bound(const Tensor& onednn, const Tensor& eigen, const Tensor& abs_sum, int64_t n, const char* op) {
  std::string what = op;
  CAPTURE(what);
  std::vector<float> a = onednn.to_vector<float>(), b = eigen.to_vector<float>();
  std::vector<double> m = abs_sum.to_vector<double>();
  REQUIRE(a.size() == b.size());
  REQUIRE(a.size() == m.size());
  const double eps = std::numeric_limits<float>::epsilon();
  size_t worst = 0, bad = 0;
  double worst_ratio = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double gap = std::fabs(double(a[i]) - double(b[i])), bound = double(n) * eps * m[i];
    double ratio = bound > 0 ? gap / bound : (gap > 0 || std::isnan(gap) ? INFINITY : 0);
    if (!(ratio <= 1)) ++bad;
    if (!(ratio <= worst_ratio)) worst_ratio = ratio, worst = i;
  }
  CAPTURE(worst);
  CAPTURE(a[worst]);
  CAPTURE(b[worst]);
  CAPTURE(n * eps * m[worst]);
  CHECK(bad == 0);
}

struct DnnlCase {
  Shape x, w;
  K::Conv2dArgs a;
  bool bias;
  const char* name;
};
const DnnlCase kDnnlCases[] = {
    {{2, 64, 7, 5}, {32, 64, 1, 1}, {1, 1, 0, 0, 1, 1}, true, "1x1 s1 (bottleneck), bias"},
    {{2, 32, 8, 8}, {48, 32, 1, 1}, {2, 2, 0, 0, 1, 1}, false, "1x1 s2 even size (downsample)"},
    {{3, 16, 9, 7}, {24, 16, 3, 3}, {1, 1, 1, 1, 1, 1}, true, "3x3 s1 p1 odd non-square, bias"},
    {{2, 32, 10, 10}, {16, 32, 3, 3}, {2, 2, 1, 1, 1, 1}, false, "3x3 s2 p1 even"},
    {{1, 8, 9, 12}, {16, 8, 3, 3}, {2, 2, 1, 1, 1, 1}, false, "3x3 s2 p1 batch 1 non-square"},
    {{2, 3, 20, 18}, {16, 3, 7, 7}, {2, 2, 3, 3, 1, 1}, true, "7x7 s2 p3 stem, bias"},
    {{1, 16, 6, 13}, {16, 16, 3, 3}, {1, 1, 1, 1, 1, 1}, false, "3x3 s1 batch 1"},
    {{2, 8, 9, 9}, {8, 8, 3, 3}, {1, 1, 2, 2, 2, 2}, false, "3x3 dilation 2"},
};
}  // namespace

namespace {
Tensor bf16_rounded(const Tensor& t) { return t.to(DType::bf16).to(DType::f32); }

// Runs case c's four computations (forward for training and for inference, backward-input,
// backward-weight) on Eigen and on oneDNN, from random inputs in layout fmt, and holds oneDNN to Eigen
// within the float32 summation bound. With bf16 products both sides multiply the bf16-rounded inputs
// (exact products in float32), so the bound is taken over |rounded x||rounded w|.
void check_onednn_against_eigen(const DnnlCase& c, MemoryFormat fmt, bool bf16_products, Rng& r) {
  std::string name = std::string(c.name) + (fmt == MemoryFormat::channels_last ? " channels-last" : " nchw") +
                     (bf16_products ? " bf16 products" : "");
  CAPTURE(name);
  Tensor x = in_format(randn(c.x, r, {DType::f32}), fmt), w = in_format(randn(c.w, r, {DType::f32}), fmt);
  Tensor b = c.bias ? randn({c.w[0]}, r, {DType::f32}) : Tensor();
  Shape ys = K::conv2d_out_shape(c.x, c.w, c.a);
  Tensor gy = in_format(randn(ys, r, {DType::f32}), fmt);
  K::Conv2dArgs a = c.a;
  a.bf16_products = bf16_products;
  K::Conv2dArgs infer = a;
  infer.inference = true;
  // Per backend: y (training and inference forward), gx, gw, each NaN-filled first in the layout
  // autograd gives them.
  auto run_all = [&](Backend be) {
    rtune::cpu::set_backend(be);
    Tensor y = nan_like(ys, fmt), yi = nan_like(ys, fmt), gx = nan_like(c.x, fmt), gw = nan_like(c.w, fmt);
    K::conv2d_forward(x, w, b, a, y);
    K::conv2d_forward(x, w, b, infer, yi);
    K::conv2d_backward_input(gy, w, a, gx);
    K::conv2d_backward_weight(gy, x, a, gw);
    return std::array<Tensor, 4>{y, gx, gw, yi};
  };
  int64_t before = rtune::cpu::onednn_executions(), before_inf = rtune::cpu::onednn_inference_executions();
  auto ref = run_all(Backend::eigen);
  CHECK(rtune::cpu::onednn_executions() == before);
  auto got = run_all(Backend::onednn);
  CHECK(rtune::cpu::onednn_executions() == before + 4);
  CHECK(rtune::cpu::onednn_inference_executions() == before_inf + 1);

  // sum|x||w| for each output: the same ops in float64 on |.|, through the Eigen oracle.
  auto as_multiplied = [&](const Tensor& t) { return abs64(bf16_products ? bf16_rounded(t) : t); };
  Tensor ax = as_multiplied(x), aw = as_multiplied(w), agy = as_multiplied(gy);
  Tensor my = empty(ys, {DType::f64}), mgx = empty(c.x, {DType::f64}), mgw = empty(c.w, {DType::f64});
  K::conv2d_forward(ax, aw, c.bias ? abs64(b) : Tensor(), c.a, my);
  K::conv2d_backward_input(agy, aw, c.a, mgx);
  K::conv2d_backward_weight(agy, ax, c.a, mgw);
  const int64_t n_fwd = c.w[1] * c.w[2] * c.w[3] + (c.bias ? 1 : 0);  // C_in*kh*kw (+ the bias term)
  const int64_t n_bwd_in = c.w[0] * c.w[2] * c.w[3];                    // C_out*kh*kw (at most)
  const int64_t n_bwd_w = ys[0] * ys[2] * ys[3];                        // N*H_out*W_out
  check_within_bound(got[0], ref[0], my, n_fwd, "forward (forward_training)");
  check_within_bound(got[3], ref[0], my, n_fwd, "forward (forward_inference)");
  check_within_bound(got[1], ref[1], mgx, n_bwd_in, "backward-input");
  check_within_bound(got[2], ref[2], mgw, n_bwd_w, "backward-weight");
}
}  // namespace

TEST_CASE("conv2d: oneDNN == Eigen within the float32 summation bound (fwd, bwd-input, bwd-weight)" *
          doctest::skip(!rtune::cpu::onednn_built())) {
  BackendScope scope;
  Rng r(21);
  for (const DnnlCase& c : kDnnlCases)
    for (MemoryFormat fmt : {MemoryFormat::contiguous, MemoryFormat::channels_last})
      check_onednn_against_eigen(c, fmt, false, r);
}

// Which forward the façade asks for: inference exactly when no gradient can flow back through the conv.
TEST_CASE("conv2d: no-grad, frozen and eval convolutions take oneDNN's forward_inference; trainable ones don't" *
          doctest::skip(!rtune::cpu::onednn_built())) {
  BackendScope scope;
  Rng r(24);
  K::Conv2dArgs a{1, 1, 1, 1, 1, 1};
  Tensor x = randn({2, 8, 6, 7}, r, {DType::f32}), w = randn({4, 8, 3, 3}, r, {DType::f32});
  rtune::cpu::set_backend(Backend::eigen);
  Tensor ref = rtune::conv2d(x, w, Tensor(), a), m = empty(ref.shape(), {DType::f64});
  K::conv2d_forward(abs64(x), abs64(w), Tensor(), a, m);
  rtune::cpu::set_backend(Backend::onednn);
  // Runs the conv; says whether it took the inference path, and holds its result to the Eigen oracle.
  auto inference = [&](const Tensor& xi, const Tensor& wi, const char* what) {
    int64_t before = rtune::cpu::onednn_inference_executions();
    Tensor y = rtune::conv2d(xi, wi, Tensor(), a);
    check_within_bound(y.detach(), ref, m, 8 * 9, what);
    return rtune::cpu::onednn_inference_executions() == before + 1;
  };
  CHECK(inference(x, w, "frozen weight, plain input"));
  Tensor wt = w.detach(), xt = x.detach();
  wt.set_requires_grad(true);
  xt.set_requires_grad(true);
  CHECK_FALSE(inference(x, wt, "trainable weight"));
  CHECK_FALSE(inference(xt, w, "frozen weight, input that needs grad (a frozen layer above a trained one)"));
  {
    rtune::NoGradGuard no_grad;  // eval
    CHECK(inference(xt, wt, "no-grad"));
  }
}

TEST_CASE("conv2d: oneDNN reads non-contiguous inputs (copied to NCHW) and writes strided outputs" *
          doctest::skip(!rtune::cpu::onednn_built())) {
  BackendScope scope;
  Rng r(22);
  Tensor x = randn({2, 8, 9, 14}, r, {DType::f32}).narrow(3, 2, 9), w = randn({4, 8, 3, 3}, r, {DType::f32});
  REQUIRE_FALSE(x.is_contiguous());
  K::Conv2dArgs a{1, 1, 1, 1, 1, 1};
  Shape ys = K::conv2d_out_shape(x.shape(), w.shape(), a);
  Tensor y_wide = full({2, 4, 9, 12}, std::nan(""), {DType::f32}), y = y_wide.narrow(3, 1, 9);
  rtune::cpu::set_backend(Backend::onednn);
  K::conv2d_forward(x, w, Tensor(), a, y);
  rtune::cpu::set_backend(Backend::eigen);
  Tensor ref = empty(ys);
  K::conv2d_forward(x, w, Tensor(), a, ref);
  Tensor m = empty(ys, {DType::f64});
  K::conv2d_forward(abs64(x), abs64(w), Tensor(), a, m);
  check_within_bound(y, ref, m, 8 * 9, "forward into a strided output");
  CHECK(std::isnan(y_wide.narrow(3, 0, 1).to_vector<float>()[0]));  // nothing written outside the view
}

TEST_CASE("cpu backend switch: float32 follows it, float64 always runs on Eigen") {
  BackendScope scope;
  Rng r(23);
  K::Conv2dArgs a{1, 1, 1, 1, 1, 1};
  Tensor x32 = randn({1, 4, 5, 5}, r, {DType::f32}), w32 = randn({2, 4, 3, 3}, r, {DType::f32});
  Tensor y32 = empty({1, 2, 5, 5}), y64 = empty({1, 2, 5, 5}, {DType::f64});
  rtune::cpu::set_backend(Backend::eigen);
  int64_t before = rtune::cpu::onednn_executions();
  K::conv2d_forward(x32, w32, Tensor(), a, y32);
  CHECK(rtune::cpu::onednn_executions() == before);
  CHECK(std::string(rtune::cpu::backend_name(rtune::cpu::backend())) == "eigen");
  if (rtune::cpu::onednn_built()) {
    rtune::cpu::set_backend(Backend::onednn);
    K::conv2d_forward(x32, w32, Tensor(), a, y32);
    CHECK(rtune::cpu::onednn_executions() == before + 1);
    K::conv2d_forward(x32.to(DType::f64), w32.to(DType::f64), Tensor(), a, y64);  // the oracle's dtype
    CHECK(rtune::cpu::onednn_executions() == before + 1);
  } else {
    CHECK_THROWS_AS(rtune::cpu::set_backend(Backend::onednn), rtune::InvalidArgument);
  }
  CHECK(rtune::cpu::parse_backend("onednn") == Backend::onednn);
  CHECK_THROWS_AS(rtune::cpu::parse_backend("mkl"), rtune::InvalidArgument);
}

// ------------------------------------------------------------------- bf16 products (--precision bf16)

#include "engine/nn/autocast.h"
#include "engine/nn/module.h"

// Both sides multiply the same bf16 values, whose products are exact in float32, and sum them in float32
// in different orders: the float32 summation bound above holds with sum|x^||w^| of the rounded inputs.
// Where oneDNN has bf16 kernels (AVX-512) they are held to the Eigen path on rounded inputs; elsewhere (CI
// also runs this under ONEDNN_MAX_CPU_ISA=AVX2) the oneDNN backend rounds the inputs itself and runs its
// float32 kernels on them: the same products, held to the same bound.
TEST_CASE("conv2d bf16 products: oneDNN's bf16 kernels == Eigen on bf16-rounded inputs (fwd, bwd-input, bwd-weight)" *
          doctest::skip(!rtune::cpu::onednn_built())) {
  BackendScope scope;
  rtune::cpu::set_backend(Backend::onednn);
  const bool kernels = rtune::cpu::onednn_bf16_kernels();
  MESSAGE(std::string(kernels ? "oneDNN's bf16 kernels held to the Eigen path"
                              : "no oneDNN bf16 kernels on this CPU: its fp32 kernels on rounded inputs held to Eigen"));
  Rng r(31);
  for (const DnnlCase& c : kDnnlCases)
    for (MemoryFormat fmt : {MemoryFormat::contiguous, MemoryFormat::channels_last})
      check_onednn_against_eigen(c, fmt, true, r);
}

// oneDNN 2.6's bf16 backward-weights kernel reads scratchpad bytes it never wrote when a padded 3x3 meets
// 1x1 inputs (ResNet's layer4 at small image sizes); rtune lends it a zeroed scratchpad. Another
// primitive's data left in the shared scratchpad must not change the gradient (it did before the fix).
TEST_CASE("conv2d bf16 backward-weight does not depend on what ran before (layer4 at 1x1 inputs)" *
          doctest::skip(!rtune::cpu::onednn_built())) {
  BackendScope scope;
  rtune::cpu::set_backend(Backend::onednn);
  Rng r(33);
  K::Conv2dArgs a{2, 2, 1, 1, 1, 1};
  a.bf16_products = true;
  Tensor x = randn({4, 16, 1, 1}, r, {DType::f32}), gy = randn({4, 32, 1, 1}, r, {DType::f32});
  auto grad = [&] {
    Tensor gw = empty({32, 16, 3, 3});
    K::conv2d_backward_weight(gy, x, a, gw);
    return gw.to_vector<float>();
  };
  const std::vector<float> first = grad();
  K::Conv2dArgs big = a;
  big.stride_h = big.stride_w = 1;
  for (int64_t hw : {14, 7, 3}) {  // larger layers fill the scratchpad with their own data
    Tensor bx = randn({8, 64, hw, hw}, r, {DType::f32}), bgy = randn({8, 64, hw, hw}, r, {DType::f32});
    Tensor bgw = empty({64, 64, 3, 3});
    K::conv2d_backward_weight(bgy, bx, big, bgw);
    CHECK(grad() == first);
  }
}

// The rounding is real and to nearest even. bf16 keeps 8 significant bits, so near 1 its spacing is 2^-7:
// x = 1 + 2^-9 lies below the midpoint and rounds to 1; w = 1 + 3*2^-8 is the midpoint of 1 + 2^-7 (odd
// last bit) and 1 + 2^-6 (even) and rounds to 1 + 2^-6. A 1x1 convolution over 4 channels then sums exactly
// representable products: every backend gives 4 * (1 + 2^-6) exactly.
TEST_CASE("conv2d bf16 products: inputs and weights rounded to bf16 (to nearest even), fp32 sums, fp32 out") {
  BackendScope scope;
  const float x_val = 1.0f + std::ldexp(1.0f, -9), w_val = 1.0f + 3 * std::ldexp(1.0f, -8);
  const float want = 4 * (1.0f + std::ldexp(1.0f, -6));
  Tensor x = full({1, 4, 2, 2}, x_val, {DType::f32}), w = full({1, 4, 1, 1}, w_val, {DType::f32});
  K::Conv2dArgs a;
  a.bf16_products = true;
  std::vector<Backend> backends{Backend::eigen};
  if (rtune::cpu::onednn_built()) backends.push_back(Backend::onednn);
  for (Backend be : backends) {
    rtune::cpu::set_backend(be);
    CAPTURE(rtune::cpu::backend_name(be));
    Tensor y = empty({1, 1, 2, 2});
    K::conv2d_forward(x, w, Tensor(), a, y);
    for (float v : y.to_vector<float>()) CHECK(v == want);
    Tensor gw = empty({1, 4, 1, 1}), gy = full({1, 1, 2, 2}, w_val, {DType::f32});
    K::conv2d_backward_weight(gy, x, a, gw);
    for (float v : gw.to_vector<float>()) CHECK(v == want);  // sum over 4 pixels of 1 * (1 + 2^-6)
    Tensor gx = empty({1, 4, 2, 2});
    K::conv2d_backward_input(gy, w, a, gx);
    for (float v : gx.to_vector<float>()) CHECK(v == (1.0f + std::ldexp(1.0f, -6)) * (1.0f + std::ldexp(1.0f, -6)));
    Tensor y32 = empty({1, 1, 2, 2});
    K::conv2d_forward(x, w, Tensor(), K::Conv2dArgs{}, y32);
    CHECK(y32.to_vector<float>()[0] != want);  // fp32 products differ: the flag matters
  }
  Tensor y64 = empty({1, 1, 2, 2}, {DType::f64});
  // A float32 mode: float64 (the oracle) is refused, never silently rounded.
  CHECK_THROWS_AS(K::conv2d_forward(x.to(DType::f64), w.to(DType::f64), Tensor(), a, y64), rtune::Error);
}

// --precision bf16 on the CPU: Conv2d (and the folded conv+BN) take bf16 products inside an Autocast
// scope; the weight's gradient still arrives in fp32 for the fp32 master weight.
TEST_CASE("Autocast bf16 on the CPU: Conv2d takes bf16 products, tensors and gradients stay fp32") {
  Rng r(32);
  nn::Conv2d conv(4, 3, 3, 1, 1, false, r);
  Tensor x = randn({2, 4, 5, 5}, r, {DType::f32});
  nn::ComputeMode mode;
  REQUIRE(nn::compute_mode_for(nn::Precision::bf16, Device::cpu(), mode));
  CHECK(mode.dtype == DType::f32);
  CHECK(mode.bf16_conv_products);
  nn::ComputeMode fp32_mode;  // fp32 changes only the layout: channels-last where oneDNN computes
  CHECK(nn::compute_mode_for(nn::Precision::fp32, Device::cpu(), fp32_mode) == kernels::channels_last_compute(Device::cpu()));
  CHECK_FALSE(fp32_mode.bf16_conv_products);
  Tensor y;
  {
    nn::Autocast scope(mode);
    y = conv.forward(x);
  }
  K::Conv2dArgs a = conv.args;
  a.bf16_products = true;
  Tensor want = empty(y.shape());
  K::conv2d_forward(x, conv.weight.detach(), Tensor(), a, want);
  CHECK(y.dtype() == DType::f32);
  CHECK(y.detach().to_vector<float>() == want.to_vector<float>());
  rtune::sum(y).backward();
  REQUIRE(conv.weight.grad().defined());
  CHECK(conv.weight.grad().dtype() == DType::f32);
}

// The CPU's bf16 needs the hardware (AVX512_BF16 or AMX) and oneDNN; `auto` takes it only then. On an
// AVX2 machine (or under ONEDNN_MAX_CPU_ISA=AVX2, which CI runs) bf16 is a clear error and auto is fp32.
TEST_CASE("--precision on the CPU: bf16 and auto follow the hardware, Eigen is fp32") {
  BackendScope scope;
  const Device cpu = Device::cpu();
  rtune::cpu::set_backend(Backend::eigen);
  CHECK(nn::parse_precision("auto", cpu) == nn::Precision::fp32);
  CHECK_THROWS_WITH_AS(nn::parse_precision("bf16", cpu), doctest::Contains("AVX512_BF16"), rtune::Error);
  if (!rtune::cpu::onednn_built()) return;
  rtune::cpu::set_backend(Backend::onednn);
  const bool native = rtune::cpu::native_bf16();
  MESSAGE(std::string(native ? "this CPU has native bf16" : "this CPU (or ONEDNN_MAX_CPU_ISA) has no native bf16"));
  CHECK(kernels::supports_bf16(cpu) == native);
  CHECK(nn::parse_precision("auto", cpu) == (native ? nn::Precision::bf16 : nn::Precision::fp32));
  if (native) CHECK(nn::parse_precision("bf16", cpu) == nn::Precision::bf16);
  else CHECK_THROWS_WITH_AS(nn::parse_precision("bf16", cpu), doctest::Contains("--precision fp32"), rtune::Error);
}

// The oneDNN CPU backend computes channels-last on AVX-512 (no reorder around each convolution; batch
// norm, pooling and the elementwise ops have channels-last kernels), NCHW on AVX2, where oneDNN 2.6's
// blocked kernels behind the reorders are faster. The channels-last path is tested on every machine: a
// float32 Conv2d in a channels-last CPU scope gives the NCHW one's values and gradients within the float32
// summation bound of its products; float64 (the Eigen oracle) keeps its dtype and NCHW; Eigen computes NCHW.
TEST_CASE("CPU compute on oneDNN: channels-last on AVX-512, training and inference; float64 and Eigen keep NCHW") {
  BackendScope scope;
  nn::ComputeMode m;
  rtune::cpu::set_backend(Backend::eigen);
  CHECK_FALSE(nn::compute_mode_for(nn::Precision::fp32, Device::cpu(), m));
  if (!rtune::cpu::onednn_built()) return;
  rtune::cpu::set_backend(Backend::onednn);
  const bool nhwc = rtune::cpu::onednn_prefers_nhwc();
  MESSAGE(std::string(nhwc ? "oneDNN AVX-512: the CPU computes channels-last" : "oneDNN AVX2: the CPU computes NCHW"));
  CHECK(nn::compute_mode_for(nn::Precision::fp32, Device::cpu(), m) == nhwc);
  if (nhwc) {
    CHECK(m.format == MemoryFormat::channels_last);
    CHECK(m.dtype == DType::f32);
    CHECK_FALSE(m.bf16_conv_products);
    CHECK(m.cpu_keeps_dtype);
  }
  const nn::ComputeMode cl_mode{DType::f32, MemoryFormat::channels_last, false, true};  // AVX-512's, on any CPU
  Rng r(38);
  nn::Conv2d conv(8, 4, 3, 1, 1, false, r);
  Tensor x = randn({2, 8, 6, 5}, r, {DType::f32}), probe = randn({2, 4, 6, 5}, r, {DType::f32});
  auto run = [&](bool in_scope) {
    Tensor xi = x.detach().clone().set_requires_grad(true);
    conv.weight.zero_grad();
    Tensor y;
    {
      std::optional<nn::Autocast> cl;
      if (in_scope) cl.emplace(cl_mode);
      y = conv.forward(xi);
    }
    rtune::sum(mul(y, probe)).backward();
    return std::tuple{y.detach(), xi.grad(), conv.weight.grad().clone()};
  };
  auto [y_nchw, gx_nchw, gw_nchw] = run(false);
  auto [y, gx, gw] = run(true);
  CHECK(y.is_contiguous(MemoryFormat::channels_last));
  CHECK_FALSE(y.is_contiguous());
  Tensor bound = empty(y.shape(), {DType::f64});
  K::conv2d_forward(abs64(x), abs64(conv.weight), Tensor(), conv.args, bound);
  check_within_bound(y.contiguous(), y_nchw, bound, 8 * 9, "channels-last training forward");
  Tensor gx_bound = empty(x.shape(), {DType::f64}), gw_bound = empty(conv.weight.shape(), {DType::f64});
  K::conv2d_backward_input(abs64(probe), abs64(conv.weight), conv.args, gx_bound);
  K::conv2d_backward_weight(abs64(probe), abs64(x), conv.args, gw_bound);
  check_within_bound(gx.contiguous(), gx_nchw, gx_bound, 4 * 9, "channels-last backward-data");
  check_within_bound(gw.contiguous(), gw_nchw, gw_bound, 2 * 6 * 5, "channels-last backward-weights");
  {
    NoGradGuard ng;  // inference too
    nn::Autocast cl(cl_mode);
    CHECK(conv.forward(x).is_contiguous(MemoryFormat::channels_last));
  }
  // float64 keeps its dtype and layout in the scope: the very same computation.
  nn::Conv2d conv64(8, 4, 3, 1, 1, false, r);
  conv64.to(DType::f64);
  Tensor x64 = x.to(DType::f64), y64_plain = conv64.forward(x64), y64;
  {
    nn::Autocast cl(cl_mode);
    y64 = conv64.forward(x64);
  }
  CHECK(y64.dtype() == DType::f64);
  CHECK(y64.is_contiguous());
  CHECK(y64.detach().to_vector<double>() == y64_plain.detach().to_vector<double>());
}

// A folded, frozen block's convolution adds the residual and clamps in its own pass (oneDNN post-ops)
// where it computes channels-last. The residual is one more term of the output's float32 sum: oneDNN's
// AVX-512 kernels add it after the bias (bit for bit the separate ops), its AVX2 kernels start their sum
// from it, another order. So the fused result is held to the convolution, then add and ReLU, within the
// float32 summation bound over n + 2 terms (|x||w| products, |bias|, |residual|); ReLU moves no value
// further apart. NCHW and the Eigen backend run the ops apart (nothing fused, so nothing may differ);
// bf16 products fuse where oneDNN has bf16 kernels.
TEST_CASE("conv2d with its epilogue: oneDNN's fused post-ops == the convolution, then add and ReLU" *
          doctest::skip(!rtune::cpu::onednn_built())) {
  BackendScope scope;
  Rng r(41);
  for (Backend be : {Backend::onednn, Backend::eigen})
    for (const DnnlCase& c : kDnnlCases)
      for (MemoryFormat fmt : {MemoryFormat::contiguous, MemoryFormat::channels_last})
        for (bool bf16 : {false, true})
          for (auto [with_residual, relu] : {std::pair{true, true}, {false, true}, {true, false}, {false, false}}) {
            rtune::cpu::set_backend(be);
            std::string name = std::string(c.name) + (be == Backend::eigen ? " eigen" : " onednn") +
                               (fmt == MemoryFormat::channels_last ? " channels-last" : " nchw") + (bf16 ? " bf16" : "") +
                               (with_residual ? " +residual" : "") + (relu ? " relu" : "");
            CAPTURE(name);
            Tensor x = in_format(randn(c.x, r, {DType::f32}), fmt), w = in_format(randn(c.w, r, {DType::f32}), fmt);
            Tensor b = c.bias ? randn({c.w[0]}, r, {DType::f32}) : Tensor();
            Shape ys = K::conv2d_out_shape(c.x, c.w, c.a);
            Tensor res = with_residual ? in_format(randn(ys, r, {DType::f32}), fmt) : Tensor();
            K::Conv2dArgs a = c.a;
            a.inference = true;
            a.bf16_products = bf16;
            Tensor want = nan_like(ys, fmt), got = nan_like(ys, fmt);
            K::conv2d_forward(x, w, b, a, want);
            if (with_residual) {
              Tensor sum = nan_like(ys, fmt);
              if (relu) K::add_relu_forward(want, res, sum);
              else K::add(want, res, sum);
              want = sum;
            } else if (relu) {
              Tensor clamped = nan_like(ys, fmt);
              K::relu_forward(want, clamped);
              want = clamped;
            }
            int64_t before = rtune::cpu::onednn_fused_executions();
            K::conv2d_forward_fused(x, w, b, res, relu, a, got);
            const bool fuses = be == Backend::onednn && fmt == MemoryFormat::channels_last &&
                               (!bf16 || rtune::cpu::onednn_bf16_kernels());
            CHECK(rtune::cpu::onednn_fused_executions() == before + (fuses ? 1 : 0));
            if (!fuses) {
              std::vector<float> g = got.to_vector<float>(), e = want.to_vector<float>();
              size_t differ = 0;
              for (size_t i = 0; i < g.size(); ++i) differ += std::memcmp(&g[i], &e[i], sizeof(float)) != 0;
              CHECK(differ == 0);
              continue;
            }
            auto as_multiplied = [&](const Tensor& t) { return abs64(bf16 ? bf16_rounded(t) : t); };
            Tensor bound = empty(ys, {DType::f64});
            K::conv2d_forward(as_multiplied(x), as_multiplied(w), c.bias ? abs64(b) : Tensor(), c.a, bound);
            if (with_residual) K::add(bound, abs64(res), bound);
            const int64_t n = c.w[1] * c.w[2] * c.w[3] + 2;
            check_within_bound(got.contiguous(), want.contiguous(), bound, n, "fused epilogue");
          }
}
