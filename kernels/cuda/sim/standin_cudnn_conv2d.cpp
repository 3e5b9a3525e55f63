// cuDNN 9.19 stand-in: 2-D convolution forward / backward data / backward filter / backward bias,
// the _v7 and Find algorithm queries and the workspace sizes (docs/cuda-libs-semantics.md §4, math in
// §12). Numbers come from direct loops over the §12 index form, accumulated in double. FLOAT data
// with a math type other than CUDNN_FMA_MATH is rounded to TF32 first, as Ampere+ GPUs may do,
// unless NVIDIA_TF32_OVERRIDE=0: parity tests must ask for FMA math, as on the GPU.
#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/cuda/sim/standin.h"

using namespace rtune::sim::standin;
namespace detail = rtune::sim::detail;

namespace {

enum class Dir { fwd, bwd_data, bwd_filter };

const char* dir_name(Dir d) {
  return d == Dir::fwd ? "cudnnConvolutionForward"
                       : d == Dir::bwd_data ? "cudnnConvolutionBackwardData" : "cudnnConvolutionBackwardFilter";
}

struct Geom {
  int N, C, H, W, K, Cg, R, S, Ho, Wo, G;
  int ph, pw, u, v, dh, dw;
  bool flip;
  size_t cs;  // bytes of the compute type
};

// The (tensor dtype, computeType) pairs cuDNN's legacy convolutions accept (§4 configuration table).
bool config_ok(cudnnDataType_t t, cudnnDataType_t compute) {
  switch (t) {
    case CUDNN_DATA_FLOAT: return compute == CUDNN_DATA_FLOAT;
    case CUDNN_DATA_DOUBLE: return compute == CUDNN_DATA_DOUBLE;
    case CUDNN_DATA_HALF: return compute == CUDNN_DATA_FLOAT || compute == CUDNN_DATA_HALF;
    case CUDNN_DATA_BFLOAT16: return compute == CUDNN_DATA_FLOAT;
    default: return false;
  }
}

// Validates the descriptors of a convolution in direction d: x is the image tensor (dx for backward
// data), y the output-side tensor (dy for the backward calls). Fills g on success.
cudnnStatus_t check_descs(Dir d, const cudnnTensorStruct* x, const cudnnFilterStruct* f,
                          const cudnnConvolutionStruct* conv, const cudnnTensorStruct* y, Geom& g) {
  const char* fn = dir_name(d);
  if (!usable(x, fn, "x descriptor") || !usable(f, fn, "filter descriptor") ||
      !usable(conv, fn, "convolution descriptor") || !usable(y, fn, "y descriptor"))
    return fail(CUDNN_STATUS_BAD_PARAM, "NULL or unset descriptor");
  if (x->nb != y->nb || x->nb != f->nb) return fail(CUDNN_STATUS_BAD_PARAM, "x, w and y differ in rank");
  if (x->nb != 4) {
    // 5-D (3-D convolution) exists in cuDNN, but a 2-D convolution descriptor requires rank 4.
    return fail(CUDNN_STATUS_BAD_PARAM, "tensor rank != convolution dims + 2");
  }
  if (x->dtype != y->dtype || x->dtype != f->dtype) return fail(CUDNN_STATUS_BAD_PARAM, "x, w and y dtypes differ");
  if (!config_ok(x->dtype, conv->compute))
    return fail(CUDNN_STATUS_NOT_SUPPORTED, fmt::format("data type {} with this computeType", cudnn_type_name(x->dtype)));
  if (x->dim[1] != conv->groups * f->dim[1])
    return fail(CUDNN_STATUS_BAD_PARAM, "x channels != groupCount * filter channels");
  if (f->dim[0] % conv->groups != 0) return fail(CUDNN_STATUS_NOT_SUPPORTED, "K is not a multiple of groupCount");
  g = Geom{x->dim[0], x->dim[1], x->dim[2], x->dim[3], f->dim[0], f->dim[1], f->dim[2], f->dim[3], 0, 0,
           conv->groups, conv->pad[0], conv->pad[1], conv->stride[0], conv->stride[1], conv->dilation[0],
           conv->dilation[1], conv->mode == CUDNN_CONVOLUTION, conv->compute == CUDNN_DATA_DOUBLE ? 8u
                                                                : conv->compute == CUDNN_DATA_HALF ? 2u : 4u};
  const int64_t span_h = int64_t(g.R - 1) * g.dh + 1, span_w = int64_t(g.S - 1) * g.dw + 1;
  const int64_t padded_h = int64_t(g.H) + 2 * g.ph, padded_w = int64_t(g.W) + 2 * g.pw;
  if (span_h > padded_h || span_w > padded_w)
    return fail(CUDNN_STATUS_BAD_PARAM, "dilated filter larger than the padded input");
  g.Ho = int(1 + (padded_h - span_h) / g.u);
  g.Wo = int(1 + (padded_w - span_w) / g.v);
  if (has_negative_stride(*x) || has_negative_stride(*y))
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "negative tensor strides");
  if (y->dim[0] != g.N || y->dim[1] != g.K || y->dim[2] != g.Ho || y->dim[3] != g.Wo)
    return fail(d == Dir::bwd_data ? CUDNN_STATUS_BAD_PARAM : CUDNN_STATUS_NOT_SUPPORTED,
                fmt::format("output-side tensor dims [{},{},{},{}] != expected [{},{},{},{}]", y->dim[0], y->dim[1],
                            y->dim[2], y->dim[3], g.N, g.K, g.Ho, g.Wo));
  // Filter in KRSC goes with channels-last tensors, KCRS with NCHW (strided tensors accepted either way).
  const Layout want_not = f->format == CUDNN_TENSOR_NHWC ? Layout::nchw : Layout::nhwc;
  if (f->format == CUDNN_TENSOR_NCHW_VECT_C || layout_of(*x) == want_not || layout_of(*y) == want_not)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "tensor and filter layouts differ");
  return CUDNN_STATUS_SUCCESS;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Workspace bytes per algorithm, or -1 when the algorithm does not support the configuration.
// Stand-in policy: formulas of the size the named method needs (im2col for GEMM, transforms for
// FFT/Winograd); DIRECT is never implemented (as in cuDNN), Winograd needs 3x3 stride 1, FFT stride 1.
int64_t workspace_bytes(Dir d, int algo, const Geom& g) {
  const int64_t cs = int64_t(g.cs);
  const bool unit = g.u == 1 && g.v == 1 && g.dh == 1 && g.dw == 1;
  const bool wino = unit && g.R == 3 && g.S == 3;
  const int64_t col = int64_t(g.C) * g.R * g.S * g.Ho * g.Wo * cs;  // im2col of one image
  const int64_t fft_planes = int64_t(g.N) * g.C + int64_t(g.K) * g.Cg + int64_t(g.N) * g.K;
  const int64_t fft = fft_planes * (g.H + 2 * g.ph) * (g.W / 2 + g.pw + 1) * 8;  // complex float planes
  const int64_t fft_tiled = fft_planes * 32 * 17 * 8;
  const int64_t wino_nf = (int64_t(g.N) * (g.C + g.K) * ceil_div(g.Ho, 4) * ceil_div(g.Wo, 4) + int64_t(g.K) * g.Cg) * 36 * cs;
  switch (d) {
    case Dir::fwd:
      switch (algo) {
        case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: return 0;
        case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: return int64_t(g.R) * g.S * g.Cg * 8 + 256;
        case CUDNN_CONVOLUTION_FWD_ALGO_GEMM: return col;
        case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT: return -1;
        case CUDNN_CONVOLUTION_FWD_ALGO_FFT: return unit ? fft : -1;
        case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING: return unit ? fft_tiled : -1;
        case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD: return wino ? 0 : -1;
        case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED: return wino ? wino_nf : -1;
      }
      break;
    case Dir::bwd_data:
      switch (algo) {
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_0: return 0;
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_1: return col;
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT: return unit ? fft : -1;
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING: return unit ? fft_tiled : -1;
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD: return wino ? 0 : -1;
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED: return wino ? wino_nf : -1;
      }
      break;
    case Dir::bwd_filter:
      switch (algo) {
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0: return 0;
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1: return col;
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT: return unit ? fft : -1;
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3: return int64_t(g.K) * g.Cg * g.R * g.S * cs;
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD: return -1;  // "not implemented" [H]
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED: return wino ? wino_nf : -1;
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING: return unit ? fft_tiled : -1;
      }
      break;
  }
  return -2;  // not an enum value
}

int algo_count(Dir d) {
  if (d == Dir::fwd) return CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
  return d == Dir::bwd_data ? int(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT) : int(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
}

// Heuristic order of the _v7 answer: a deterministic algorithm with a non-zero workspace first, so
// the backend's workspace path always runs.
std::vector<int> preference(Dir d) {
  switch (d) {
    case Dir::fwd:
      return {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
              CUDNN_CONVOLUTION_FWD_ALGO_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED,
              CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING,
              CUDNN_CONVOLUTION_FWD_ALGO_FFT, CUDNN_CONVOLUTION_FWD_ALGO_DIRECT};
    case Dir::bwd_data:
      return {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0,
              CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED, CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD,
              CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING, CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT};
    case Dir::bwd_filter:
      return {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0,
              CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED,
              CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT,
              CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD};
  }
  return {};
}

bool deterministic(Dir d, int algo) {
  if (d == Dir::bwd_data) return algo != CUDNN_CONVOLUTION_BWD_DATA_ALGO_0;
  if (d == Dir::bwd_filter) return algo != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 && algo != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
  return true;
}

template <class Perf>
cudnnStatus_t query(Dir d, cudnnHandle_t handle, const cudnnTensorStruct* x, const cudnnFilterStruct* f,
                    const cudnnConvolutionStruct* conv, const cudnnTensorStruct* y, int requested, int* returned,
                    Perf* perf) {
  if (!usable_handle(handle, dir_name(d))) return fail(CUDNN_STATUS_BAD_PARAM, "invalid handle");
  if (requested < 1 || !returned || !perf) return fail(CUDNN_STATUS_BAD_PARAM, "requestedAlgoCount < 1 or NULL output");
  Geom g{};
  const cudnnStatus_t st = check_descs(d, x, f, conv, y, g);
  if (CUDNN_STATUS_CATEGORY(st) == CUDNN_STATUS_BAD_PARAM) return st;
  const std::vector<int> order = preference(d);
  std::vector<Perf> ok, bad;
  for (int algo : order) {
    Perf p{};
    std::memset(&p, 0, sizeof p);
    p.algo = decltype(p.algo)(algo);
    const int64_t ws = st == CUDNN_STATUS_SUCCESS ? workspace_bytes(d, algo, g) : -1;
    p.status = ws < 0 ? (st != CUDNN_STATUS_SUCCESS ? st : CUDNN_STATUS_NOT_SUPPORTED) : CUDNN_STATUS_SUCCESS;
    p.memory = ws < 0 ? 0 : size_t(ws);
    p.determinism = deterministic(d, algo) ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC;
    p.mathType = conv->math;
    (ws < 0 ? bad : ok).push_back(p);
  }
  ok.insert(ok.end(), bad.begin(), bad.end());
  const int n = std::min<int>(requested, int(ok.size()));
  for (int i = 0; i < n; ++i) {
    ok[size_t(i)].time = ok[size_t(i)].status == CUDNN_STATUS_SUCCESS ? 0.1f * float(i + 1) : -1.f;
    perf[i] = ok[size_t(i)];
  }
  *returned = n;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t workspace_query(Dir d, cudnnHandle_t handle, const cudnnTensorStruct* x, const cudnnFilterStruct* f,
                              const cudnnConvolutionStruct* conv, const cudnnTensorStruct* y, int algo, size_t* size) {
  if (!usable_handle(handle, dir_name(d))) return fail(CUDNN_STATUS_BAD_PARAM, "invalid handle");
  if (!size) return fail(CUDNN_STATUS_BAD_PARAM, "sizeInBytes == NULL");
  Geom g{};
  if (cudnnStatus_t st = check_descs(d, x, f, conv, y, g); st != CUDNN_STATUS_SUCCESS) return st;
  const int64_t ws = workspace_bytes(d, algo, g);
  if (ws == -2) return fail(CUDNN_STATUS_BAD_PARAM, "algo is not an enum value");
  if (ws < 0) return fail(CUDNN_STATUS_NOT_SUPPORTED, "algo does not support this configuration");
  *size = size_t(ws);
  return CUDNN_STATUS_SUCCESS;
}

// ---- Numerics (§12) ----

// TF32: 10 explicit mantissa bits, round to nearest even.
double tf32(double v) {
  float f = float(v);
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return v;
  u += 0xfffu + ((u >> 13) & 1u);
  u &= ~0x1fffu;
  std::memcpy(&f, &u, 4);
  return f;
}

bool uses_tf32(const cudnnTensorStruct& t, const cudnnConvolutionStruct& conv) {
  if (t.dtype != CUDNN_DATA_FLOAT || conv.math == CUDNN_FMA_MATH) return false;
  const char* env = std::getenv("NVIDIA_TF32_OVERRIDE");
  return !(env && std::strcmp(env, "0") == 0);
}

void round_tf32(std::vector<double>& v) {
  for (double& x : v) x = tf32(x);
}

int64_t filter_off(const cudnnFilterStruct& f, const Geom& g, int k, int c, int r, int s) {
  return f.format == CUDNN_TENSOR_NHWC ? ((int64_t(k) * g.R + r) * g.S + s) * g.Cg + c
                                       : ((int64_t(k) * g.Cg + c) * g.R + r) * g.S + s;
}

// Filter as packed KCRS doubles.
std::vector<double> gather_filter(const cudnnFilterStruct& f, const Geom& g, const void* w) {
  std::vector<double> out(size_t(g.K) * g.Cg * g.R * g.S);
  const Elem e = elem_of(f.dtype);
  size_t i = 0;
  for (int k = 0; k < g.K; ++k)
    for (int c = 0; c < g.Cg; ++c)
      for (int r = 0; r < g.R; ++r)
        for (int s = 0; s < g.S; ++s) out[i++] = load(w, filter_off(f, g, k, c, r, s), e);
  return out;
}

size_t filter_bytes(const cudnnFilterStruct& f) {
  size_t n = cudnn_type_bytes(f.dtype);
  for (int i = 0; i < f.nb; ++i) n *= size_t(f.dim[i]);
  return n;
}

std::vector<double> conv_forward(const Geom& g, const std::vector<double>& x, const std::vector<double>& w) {
  std::vector<double> y(size_t(g.N) * g.K * g.Ho * g.Wo);
  const int kg = g.K / g.G;
#pragma omp parallel for collapse(2) schedule(static)
  for (int n = 0; n < g.N; ++n)
    for (int k = 0; k < g.K; ++k) {
      const int c0 = (k / kg) * g.Cg;
      for (int p = 0; p < g.Ho; ++p)
        for (int q = 0; q < g.Wo; ++q) {
          double acc = 0;
          for (int c = 0; c < g.Cg; ++c)
            for (int r = 0; r < g.R; ++r) {
              const int ih = p * g.u - g.ph + r * g.dh;
              if (ih < 0 || ih >= g.H) continue;
              const int rr = g.flip ? g.R - 1 - r : r;
              for (int s = 0; s < g.S; ++s) {
                const int iw = q * g.v - g.pw + s * g.dw;
                if (iw < 0 || iw >= g.W) continue;
                const int ss = g.flip ? g.S - 1 - s : s;
                acc += x[((size_t(n) * g.C + c0 + c) * g.H + ih) * g.W + iw] *
                       w[((size_t(k) * g.Cg + c) * g.R + rr) * g.S + ss];
              }
            }
          y[((size_t(n) * g.K + k) * g.Ho + p) * g.Wo + q] = acc;
        }
    }
  return y;
}

std::vector<double> conv_backward_data(const Geom& g, const std::vector<double>& dy, const std::vector<double>& w) {
  std::vector<double> dx(size_t(g.N) * g.C * g.H * g.W);
  const int kg = g.K / g.G;
#pragma omp parallel for collapse(2) schedule(static)
  for (int n = 0; n < g.N; ++n)
    for (int c = 0; c < g.C; ++c) {
      const int grp = c / g.Cg, cl = c % g.Cg;
      for (int h = 0; h < g.H; ++h)
        for (int wi = 0; wi < g.W; ++wi) {
          double acc = 0;
          for (int k = grp * kg; k < (grp + 1) * kg; ++k)
            for (int r = 0; r < g.R; ++r) {
              const int ph = h + g.ph - r * g.dh;  // = p*u when this tap reads row h
              if (ph < 0 || ph % g.u != 0 || ph / g.u >= g.Ho) continue;
              const int rr = g.flip ? g.R - 1 - r : r;
              for (int s = 0; s < g.S; ++s) {
                const int qw = wi + g.pw - s * g.dw;
                if (qw < 0 || qw % g.v != 0 || qw / g.v >= g.Wo) continue;
                const int ss = g.flip ? g.S - 1 - s : s;
                acc += dy[((size_t(n) * g.K + k) * g.Ho + ph / g.u) * g.Wo + qw / g.v] *
                       w[((size_t(k) * g.Cg + cl) * g.R + rr) * g.S + ss];
              }
            }
          dx[((size_t(n) * g.C + c) * g.H + h) * g.W + wi] = acc;
        }
    }
  return dx;
}

// Packed KCRS result (tap index already flipped for CUDNN_CONVOLUTION).
std::vector<double> conv_backward_filter(const Geom& g, const std::vector<double>& x, const std::vector<double>& dy) {
  std::vector<double> dw(size_t(g.K) * g.Cg * g.R * g.S);
  const int kg = g.K / g.G;
#pragma omp parallel for collapse(2) schedule(static)
  for (int k = 0; k < g.K; ++k)
    for (int c = 0; c < g.Cg; ++c) {
      const int cx = (k / kg) * g.Cg + c;
      for (int r = 0; r < g.R; ++r)
        for (int s = 0; s < g.S; ++s) {
          double acc = 0;
          for (int n = 0; n < g.N; ++n)
            for (int p = 0; p < g.Ho; ++p) {
              const int ih = p * g.u - g.ph + r * g.dh;
              if (ih < 0 || ih >= g.H) continue;
              for (int q = 0; q < g.Wo; ++q) {
                const int iw = q * g.v - g.pw + s * g.dw;
                if (iw < 0 || iw >= g.W) continue;
                acc += dy[((size_t(n) * g.K + k) * g.Ho + p) * g.Wo + q] * x[((size_t(n) * g.C + cx) * g.H + ih) * g.W + iw];
              }
            }
          const int rr = g.flip ? g.R - 1 - r : r, ss = g.flip ? g.S - 1 - s : s;
          dw[((size_t(k) * g.Cg + c) * g.R + rr) * g.S + ss] = acc;
        }
    }
  return dw;
}

// Checks shared by the three compute calls after the descriptors: pointers, algo, workspace.
cudnnStatus_t check_call(Dir d, int algo, const Geom& g, const void* alpha, const void* beta,
                         const void* a, const void* b, const void* out, const void* ws, size_t ws_bytes) {
  if (!alpha || !beta || !a || !b || !out) return fail(CUDNN_STATUS_BAD_PARAM, "NULL data, alpha or beta pointer");
  const int64_t need = workspace_bytes(d, algo, g);
  if (need == -2) return fail(CUDNN_STATUS_BAD_PARAM, "algo is not an enum value");
  if (need < 0) return fail(CUDNN_STATUS_NOT_SUPPORTED, "algo does not support this configuration");
  if (!ws && ws_bytes > 0) return fail(CUDNN_STATUS_BAD_PARAM, "workSpace == NULL with a non-zero size");
  if (int64_t(ws_bytes) < need)
    return fail(CUDNN_STATUS_BAD_PARAM, fmt::format("workSpaceSizeInBytes {} < {} needed", ws_bytes, need));
  return CUDNN_STATUS_SUCCESS;
}

void lint_output(const cudnnTensorStruct& t, const char* fn) {
  if (strides_overlap(t)) detail::lint(fmt::format("{}: output strides overlap: {}", fn, describe(t)));
}

std::string conv_detail(const Geom& g, const cudnnConvolutionStruct& c, int algo, double alpha, double beta) {
  return fmt::format("pad {},{} stride {},{} dil {},{} groups {} {} math {} algo {} alpha {} beta {}", g.ph, g.pw, g.u,
                     g.v, g.dh, g.dw, g.G, c.mode == CUDNN_CONVOLUTION ? "conv" : "xcorr", int(c.math), algo, alpha,
                     beta);
}

}  // namespace

extern "C" {

cudnnStatus_t cudnnGetConvolutionForwardAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
  if (!usable_handle(handle, "cudnnGetConvolutionForwardAlgorithmMaxCount") || !count)
    return fail(CUDNN_STATUS_BAD_PARAM, "invalid argument");
  *count = algo_count(Dir::fwd);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
  if (!usable_handle(handle, "cudnnGetConvolutionBackwardDataAlgorithmMaxCount") || !count)
    return fail(CUDNN_STATUS_BAD_PARAM, "invalid argument");
  *count = algo_count(Dir::bwd_data);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
  if (!usable_handle(handle, "cudnnGetConvolutionBackwardFilterAlgorithmMaxCount") || !count)
    return fail(CUDNN_STATUS_BAD_PARAM, "invalid argument");
  *count = algo_count(Dir::bwd_filter);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
                                                     const cudnnFilterDescriptor_t filterDesc,
                                                     const cudnnConvolutionDescriptor_t convDesc,
                                                     const cudnnTensorDescriptor_t destDesc, const int requestedAlgoCount,
                                                     int* returnedAlgoCount, cudnnConvolutionFwdAlgoPerf_t* perfResults) {
  return query(Dir::fwd, handle, srcDesc, filterDesc, convDesc, destDesc, requestedAlgoCount, returnedAlgoCount,
               perfResults);
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithm(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                   const cudnnFilterDescriptor_t wDesc,
                                                   const cudnnConvolutionDescriptor_t convDesc,
                                                   const cudnnTensorDescriptor_t yDesc, const int requestedAlgoCount,
                                                   int* returnedAlgoCount, cudnnConvolutionFwdAlgoPerf_t* perfResults) {
  detail::log_call("cudnnFindConvolutionForwardAlgorithm", "");
  return query(Dir::fwd, handle, xDesc, wDesc, convDesc, yDesc, requestedAlgoCount, returnedAlgoCount, perfResults);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t handle, const cudnnFilterDescriptor_t filterDesc,
                                                          const cudnnTensorDescriptor_t diffDesc,
                                                          const cudnnConvolutionDescriptor_t convDesc,
                                                          const cudnnTensorDescriptor_t gradDesc,
                                                          const int requestedAlgoCount, int* returnedAlgoCount,
                                                          cudnnConvolutionBwdDataAlgoPerf_t* perfResults) {
  return query(Dir::bwd_data, handle, gradDesc, filterDesc, convDesc, diffDesc, requestedAlgoCount, returnedAlgoCount,
               perfResults);
}

cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithm(cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc,
                                                        const cudnnTensorDescriptor_t dyDesc,
                                                        const cudnnConvolutionDescriptor_t convDesc,
                                                        const cudnnTensorDescriptor_t dxDesc, const int requestedAlgoCount,
                                                        int* returnedAlgoCount,
                                                        cudnnConvolutionBwdDataAlgoPerf_t* perfResults) {
  detail::log_call("cudnnFindConvolutionBackwardDataAlgorithm", "");
  return query(Dir::bwd_data, handle, dxDesc, wDesc, convDesc, dyDesc, requestedAlgoCount, returnedAlgoCount,
               perfResults);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc,
                                                            const cudnnTensorDescriptor_t diffDesc,
                                                            const cudnnConvolutionDescriptor_t convDesc,
                                                            const cudnnFilterDescriptor_t gradDesc,
                                                            const int requestedAlgoCount, int* returnedAlgoCount,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t* perfResults) {
  return query(Dir::bwd_filter, handle, srcDesc, gradDesc, convDesc, diffDesc, requestedAlgoCount, returnedAlgoCount,
               perfResults);
}

cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithm(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                          const cudnnTensorDescriptor_t dyDesc,
                                                          const cudnnConvolutionDescriptor_t convDesc,
                                                          const cudnnFilterDescriptor_t dwDesc,
                                                          const int requestedAlgoCount, int* returnedAlgoCount,
                                                          cudnnConvolutionBwdFilterAlgoPerf_t* perfResults) {
  detail::log_call("cudnnFindConvolutionBackwardFilterAlgorithm", "");
  return query(Dir::bwd_filter, handle, xDesc, dwDesc, convDesc, dyDesc, requestedAlgoCount, returnedAlgoCount,
               perfResults);
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                      const cudnnFilterDescriptor_t wDesc,
                                                      const cudnnConvolutionDescriptor_t convDesc,
                                                      const cudnnTensorDescriptor_t yDesc, cudnnConvolutionFwdAlgo_t algo,
                                                      size_t* sizeInBytes) {
  return workspace_query(Dir::fwd, handle, xDesc, wDesc, convDesc, yDesc, int(algo), sizeInBytes);
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc,
                                                           const cudnnTensorDescriptor_t dyDesc,
                                                           const cudnnConvolutionDescriptor_t convDesc,
                                                           const cudnnTensorDescriptor_t dxDesc,
                                                           cudnnConvolutionBwdDataAlgo_t algo, size_t* sizeInBytes) {
  return workspace_query(Dir::bwd_data, handle, dxDesc, wDesc, convDesc, dyDesc, int(algo), sizeInBytes);
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc,
                                                             const cudnnTensorDescriptor_t dyDesc,
                                                             const cudnnConvolutionDescriptor_t convDesc,
                                                             const cudnnFilterDescriptor_t gradDesc,
                                                             cudnnConvolutionBwdFilterAlgo_t algo, size_t* sizeInBytes) {
  return workspace_query(Dir::bwd_filter, handle, xDesc, gradDesc, convDesc, dyDesc, int(algo), sizeInBytes);
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t xDesc,
                                      const void* x, const cudnnFilterDescriptor_t wDesc, const void* w,
                                      const cudnnConvolutionDescriptor_t convDesc, cudnnConvolutionFwdAlgo_t algo,
                                      void* workSpace, size_t workSpaceSizeInBytes, const void* beta,
                                      const cudnnTensorDescriptor_t yDesc, void* y) {
  const char* fn = "cudnnConvolutionForward";
  if (!usable_handle(handle, fn)) return fail(CUDNN_STATUS_BAD_PARAM, "invalid handle");
  Geom g{};
  if (cudnnStatus_t st = check_descs(Dir::fwd, xDesc, wDesc, convDesc, yDesc, g); st != CUDNN_STATUS_SUCCESS) return st;
  if (cudnnStatus_t st = check_call(Dir::fwd, algo, g, alpha, beta, x, w, y, workSpace, workSpaceSizeInBytes);
      st != CUDNN_STATUS_SUCCESS)
    return st;
  lint_output(*yDesc, fn);
  check_tensor_range(*xDesc, x, "cudnnConvolutionForward x");
  check_bytes(w, filter_bytes(*wDesc), "cudnnConvolutionForward w");
  check_tensor_range(*yDesc, y, "cudnnConvolutionForward y");
  check_bytes(workSpace, workSpaceSizeInBytes, "cudnnConvolutionForward workSpace");
  const bool dbl = xDesc->dtype == CUDNN_DATA_DOUBLE;
  const double a = read_scale(alpha, dbl), b = read_scale(beta, dbl);
  detail::log_call(fn, fmt::format("x {} w {} y {} {}", describe(*xDesc), describe(*wDesc), describe(*yDesc),
                                   conv_detail(g, *convDesc, algo, a, b)));
  std::vector<double> xs = gather(view4(*xDesc), x), ws = gather_filter(*wDesc, g, w);
  if (uses_tf32(*xDesc, *convDesc)) round_tf32(xs), round_tf32(ws);
  blend_store(view4(*yDesc), y, conv_forward(g, xs, ws), a, b);
  scribble(workSpace, workSpaceSizeInBytes);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void* alpha, const cudnnFilterDescriptor_t wDesc,
                                           const void* w, const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                           const cudnnConvolutionDescriptor_t convDesc,
                                           cudnnConvolutionBwdDataAlgo_t algo, void* workSpace,
                                           size_t workSpaceSizeInBytes, const void* beta,
                                           const cudnnTensorDescriptor_t dxDesc, void* dx) {
  const char* fn = "cudnnConvolutionBackwardData";
  if (!usable_handle(handle, fn)) return fail(CUDNN_STATUS_BAD_PARAM, "invalid handle");
  Geom g{};
  if (cudnnStatus_t st = check_descs(Dir::bwd_data, dxDesc, wDesc, convDesc, dyDesc, g); st != CUDNN_STATUS_SUCCESS)
    return st;
  if (cudnnStatus_t st = check_call(Dir::bwd_data, algo, g, alpha, beta, w, dy, dx, workSpace, workSpaceSizeInBytes);
      st != CUDNN_STATUS_SUCCESS)
    return st;
  lint_output(*dxDesc, fn);
  check_bytes(w, filter_bytes(*wDesc), "cudnnConvolutionBackwardData w");
  check_tensor_range(*dyDesc, dy, "cudnnConvolutionBackwardData dy");
  check_tensor_range(*dxDesc, dx, "cudnnConvolutionBackwardData dx");
  check_bytes(workSpace, workSpaceSizeInBytes, "cudnnConvolutionBackwardData workSpace");
  const bool dbl = dxDesc->dtype == CUDNN_DATA_DOUBLE;
  const double a = read_scale(alpha, dbl), b = read_scale(beta, dbl);
  detail::log_call(fn, fmt::format("w {} dy {} dx {} {}", describe(*wDesc), describe(*dyDesc), describe(*dxDesc),
                                   conv_detail(g, *convDesc, algo, a, b)));
  std::vector<double> dys = gather(view4(*dyDesc), dy), ws = gather_filter(*wDesc, g, w);
  if (uses_tf32(*dxDesc, *convDesc)) round_tf32(dys), round_tf32(ws);
  blend_store(view4(*dxDesc), dx, conv_backward_data(g, dys, ws), a, b);
  scribble(workSpace, workSpaceSizeInBytes);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t xDesc,
                                             const void* x, const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                             const cudnnConvolutionDescriptor_t convDesc,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void* workSpace,
                                             size_t workSpaceSizeInBytes, const void* beta,
                                             const cudnnFilterDescriptor_t dwDesc, void* dw) {
  const char* fn = "cudnnConvolutionBackwardFilter";
  if (!usable_handle(handle, fn)) return fail(CUDNN_STATUS_BAD_PARAM, "invalid handle");
  Geom g{};
  if (cudnnStatus_t st = check_descs(Dir::bwd_filter, xDesc, dwDesc, convDesc, dyDesc, g); st != CUDNN_STATUS_SUCCESS)
    return st;
  if (cudnnStatus_t st = check_call(Dir::bwd_filter, algo, g, alpha, beta, x, dy, dw, workSpace, workSpaceSizeInBytes);
      st != CUDNN_STATUS_SUCCESS)
    return st;
  check_tensor_range(*xDesc, x, "cudnnConvolutionBackwardFilter x");
  check_tensor_range(*dyDesc, dy, "cudnnConvolutionBackwardFilter dy");
  check_bytes(dw, filter_bytes(*dwDesc), "cudnnConvolutionBackwardFilter dw");
  check_bytes(workSpace, workSpaceSizeInBytes, "cudnnConvolutionBackwardFilter workSpace");
  const bool dbl = xDesc->dtype == CUDNN_DATA_DOUBLE;
  const double a = read_scale(alpha, dbl), b = read_scale(beta, dbl);
  detail::log_call(fn, fmt::format("x {} dy {} dw {} {}", describe(*xDesc), describe(*dyDesc), describe(*dwDesc),
                                   conv_detail(g, *convDesc, algo, a, b)));
  std::vector<double> xs = gather(view4(*xDesc), x), dys = gather(view4(*dyDesc), dy);
  if (uses_tf32(*xDesc, *convDesc)) round_tf32(xs), round_tf32(dys);
  const std::vector<double> r = conv_backward_filter(g, xs, dys);
  const Elem e = elem_of(dwDesc->dtype);
  size_t i = 0;
  for (int k = 0; k < g.K; ++k)
    for (int c = 0; c < g.Cg; ++c)
      for (int rr = 0; rr < g.R; ++rr)
        for (int ss = 0; ss < g.S; ++ss, ++i) {
          const int64_t o = filter_off(*dwDesc, g, k, c, rr, ss);
          store(dw, o, e, b == 0.0 ? a * r[i] : a * r[i] + b * load(dw, o, e));
        }
  scribble(workSpace, workSpaceSizeInBytes);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionBackwardBias(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t dyDesc,
                                           const void* dy, const void* beta, const cudnnTensorDescriptor_t dbDesc,
                                           void* db) {
  const char* fn = "cudnnConvolutionBackwardBias";
  if (!usable_handle(handle, fn)) return fail(CUDNN_STATUS_BAD_PARAM, "invalid handle");
  if (!usable(dyDesc, fn, "dy descriptor") || !usable(dbDesc, fn, "db descriptor"))
    return fail(CUDNN_STATUS_BAD_PARAM, "NULL or unset descriptor");
  if (!alpha || !beta || !dy || !db) return fail(CUDNN_STATUS_BAD_PARAM, "NULL data, alpha or beta pointer");
  if (dyDesc->nb != 4 || dbDesc->nb != 4) return fail(CUDNN_STATUS_NOT_SUPPORTED, "rank other than 4");
  if (dbDesc->dim[0] != 1 || dbDesc->dim[1] != dyDesc->dim[1] || dbDesc->dim[2] != 1 || dbDesc->dim[3] != 1)
    return fail(CUDNN_STATUS_BAD_PARAM, "dbDesc is not 1xKx1x1");
  if (dbDesc->dtype != dyDesc->dtype) return fail(CUDNN_STATUS_BAD_PARAM, "db dtype != dy dtype");
  if (elem_of(dyDesc->dtype) == Elem::none || elem_of(dyDesc->dtype) == Elem::i8 ||
      elem_of(dyDesc->dtype) == Elem::u8 || elem_of(dyDesc->dtype) == Elem::i32)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "data type");
  check_tensor_range(*dyDesc, dy, "cudnnConvolutionBackwardBias dy");
  check_tensor_range(*dbDesc, db, "cudnnConvolutionBackwardBias db");
  const bool dbl = dyDesc->dtype == CUDNN_DATA_DOUBLE;
  const double a = read_scale(alpha, dbl), b = read_scale(beta, dbl);
  detail::log_call(fn, fmt::format("dy {} db {} alpha {} beta {}", describe(*dyDesc), describe(*dbDesc), a, b));
  const View4 v = view4(*dyDesc);
  std::vector<double> sum(size_t(v.c), 0.0);
  for (int c = 0; c < v.c; ++c)
    for (int n = 0; n < v.n; ++n)
      for (int h = 0; h < v.h; ++h)
        for (int w = 0; w < v.w; ++w) sum[size_t(c)] += load(dy, v.off(n, c, h, w), v.e);
  blend_store(view4(*dbDesc), db, sum, a, b);
  return CUDNN_STATUS_SUCCESS;
}

}  // extern "C"
