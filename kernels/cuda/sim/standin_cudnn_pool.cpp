// cuDNN 9.19 stand-in: 2-D pooling forward/backward (docs/cuda-libs-semantics.md §6) and the elementwise
// tensor calls cudnnAddTensor / cudnnSetTensor (§7). Max pooling matches torch.nn.MaxPool2d: padded
// cells never win, NaN propagates under CUDNN_PROPAGATE_NAN, the gradient goes to the first maximum in
// row-major window order. Average pooling matches AvgPool2d(count_include_pad=True/False).
#include <fmt/format.h>

#include <cmath>
#include <algorithm>
#include <functional>
#include <limits>
#include <vector>

#include "kernels/cuda/sim/standin.h"

using namespace rtune::sim::standin;
namespace detail = rtune::sim::detail;

namespace {

struct Pool {
  View4 x, y;
  int kh, kw, ph, pw, u, v;
  cudnnPoolingMode_t mode;
  bool propagate_nan;
};

const char* pool_mode_name(cudnnPoolingMode_t m) {
  switch (m) {
    case CUDNN_POOLING_MAX: return "MAX";
    case CUDNN_POOLING_MAX_DETERMINISTIC: return "MAX_DETERMINISTIC";
    case CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING: return "AVG_INCLUDE_PAD";
    default: return "AVG_EXCLUDE_PAD";
  }
}

bool is_max(cudnnPoolingMode_t m) { return m == CUDNN_POOLING_MAX || m == CUDNN_POOLING_MAX_DETERMINISTIC; }

bool float_type(cudnnDataType_t t) {
  const Elem e = elem_of(t);
  return e == Elem::f32 || e == Elem::f64 || e == Elem::f16 || e == Elem::bf16;
}

// x: input-side tensor, y: output-side tensor. n/c mismatches are BAD_PARAM, other dims NOT_SUPPORTED.
cudnnStatus_t check_pool(const char* fn, const cudnnPoolingStruct* pd, const cudnnTensorStruct* x,
                         const cudnnTensorStruct* y, Pool& p) {
  if (!usable(pd, fn, "pooling descriptor") || !usable(x, fn, "x descriptor") || !usable(y, fn, "y descriptor"))
    return fail(CUDNN_STATUS_BAD_PARAM, "NULL or unset descriptor");
  if (x->nb != 4 || y->nb != 4) return fail(CUDNN_STATUS_NOT_SUPPORTED, "2-D pooling needs 4-D tensors");
  if (x->dtype != y->dtype) return fail(CUDNN_STATUS_BAD_PARAM, "x and y dtypes differ");
  if (!float_type(x->dtype)) return fail(CUDNN_STATUS_NOT_SUPPORTED, "pooling data type");
  if (x->dim[0] != y->dim[0] || x->dim[1] != y->dim[1]) return fail(CUDNN_STATUS_BAD_PARAM, "n/c of x and y differ");
  int out[2];
  for (int i = 0; i < 2; ++i) {
    const int64_t padded = int64_t(x->dim[2 + i]) + 2 * int64_t(pd->pad[i]);
    if (padded < pd->window[i]) return fail(CUDNN_STATUS_BAD_PARAM, "window larger than the padded input");
    out[i] = int(1 + (padded - pd->window[i]) / pd->stride[i]);
  }
  if (y->dim[2] != out[0] || y->dim[3] != out[1])
    return fail(CUDNN_STATUS_NOT_SUPPORTED, fmt::format("y spatial dims {}x{} != {}x{}", y->dim[2], y->dim[3], out[0], out[1]));
  for (int i = 0; i < 2; ++i)
    if (pd->pad[i] < 0 || pd->pad[i] >= pd->window[i])
      detail::lint(fmt::format("{}: padding {} outside [0, window {}) (cuDNN accepts it, PyTorch does not)", fn,
                               pd->pad[i], pd->window[i]));
  p = Pool{view4(*x), view4(*y), pd->window[0], pd->window[1], pd->pad[0], pd->pad[1], pd->stride[0],
           pd->stride[1], pd->mode, pd->nan == CUDNN_PROPAGATE_NAN};
  return CUDNN_STATUS_SUCCESS;
}

struct Window {
  int h0, h1, w0, w1;  // valid cells [h0,h1) x [w0,w1)
};

Window window_of(const Pool& p, int oh, int ow) {
  const int hs = oh * p.u - p.ph, ws = ow * p.v - p.pw;
  return {std::max(hs, 0), std::min(hs + p.kh, p.x.h), std::max(ws, 0), std::min(ws + p.kw, p.x.w)};
}

double divisor(const Pool& p, const Window& w) {
  return p.mode == CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING ? double(p.kh) * p.kw
                                                               : double(w.h1 - w.h0) * (w.w1 - w.w0);
}

// Max over the valid cells; returns the first argmax (row-major) through ah/aw (-1 when none).
double window_max(const Pool& p, const void* x, int n, int c, const Window& w, int& ah, int& aw) {
  double best = -std::numeric_limits<double>::infinity();
  ah = aw = -1;
  for (int h = w.h0; h < w.h1; ++h)
    for (int i = w.w0; i < w.w1; ++i) {
      const double v = load(x, p.x.off(n, c, h, i), p.x.e);
      if (std::isnan(v)) {
        if (p.propagate_nan) {
          ah = h, aw = i;
          return v;
        }
        continue;  // NOT_PROPAGATE: NaN cells are skipped (unverified on the GPU)
      }
      if (ah < 0 || v > best) best = v, ah = h, aw = i;
    }
  return ah < 0 ? 0.0 : best;
}

void for_each_index(const cudnnTensorStruct& d, const std::function<void(const int*)>& fn) {
  int idx[CUDNN_DIM_MAX] = {};
  for (;;) {
    fn(idx);
    int i = d.nb - 1;
    while (i >= 0 && ++idx[i] == d.dim[i]) idx[i--] = 0;
    if (i < 0) return;
  }
}

int64_t offset_of(const cudnnTensorStruct& d, const int* idx) {
  int64_t o = 0;
  for (int i = 0; i < d.nb; ++i) o += int64_t(idx[i]) * d.stride[i];
  return o;
}

}  // namespace

extern "C" {

cudnnStatus_t cudnnPoolingForward(cudnnHandle_t handle, const cudnnPoolingDescriptor_t poolingDesc, const void* alpha,
                                  const cudnnTensorDescriptor_t xDesc, const void* x, const void* beta,
                                  const cudnnTensorDescriptor_t yDesc, void* y) {
  const char* fn = "cudnnPoolingForward";
  if (!usable_handle(handle, fn)) return fail(CUDNN_STATUS_BAD_PARAM, "invalid handle");
  Pool p{};
  if (cudnnStatus_t st = check_pool(fn, poolingDesc, xDesc, yDesc, p); st != CUDNN_STATUS_SUCCESS) return st;
  if (!alpha || !beta || !x || !y) return fail(CUDNN_STATUS_BAD_PARAM, "NULL pointer");
  if (strides_overlap(*yDesc)) detail::lint(fmt::format("{}: output strides overlap: {}", fn, describe(*yDesc)));
  check_tensor_range(*xDesc, x, "cudnnPoolingForward x");
  check_tensor_range(*yDesc, y, "cudnnPoolingForward y");
  const bool dbl = xDesc->dtype == CUDNN_DATA_DOUBLE;
  const double a = read_scale(alpha, dbl), b = read_scale(beta, dbl);
  detail::log_call(fn, fmt::format("x {} y {} {} window {}x{} pad {},{} stride {},{} alpha {} beta {}", describe(*xDesc),
                                   describe(*yDesc), pool_mode_name(p.mode), p.kh, p.kw, p.ph, p.pw, p.u, p.v, a, b));
  std::vector<double> r(size_t(p.y.count()));
  size_t i = 0;
  for (int n = 0; n < p.y.n; ++n)
    for (int c = 0; c < p.y.c; ++c)
      for (int oh = 0; oh < p.y.h; ++oh)
        for (int ow = 0; ow < p.y.w; ++ow, ++i) {
          const Window w = window_of(p, oh, ow);
          if (is_max(p.mode)) {
            int ah, aw;
            r[i] = window_max(p, x, n, c, w, ah, aw);
            continue;
          }
          double sum = 0;
          for (int h = w.h0; h < w.h1; ++h)
            for (int q = w.w0; q < w.w1; ++q) sum += load(x, p.x.off(n, c, h, q), p.x.e);
          const double d = divisor(p, w);
          r[i] = d > 0 ? sum / d : 0.0;
        }
  blend_store(p.y, y, r, a, b);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnPoolingBackward(cudnnHandle_t handle, const cudnnPoolingDescriptor_t poolingDesc, const void* alpha,
                                   const cudnnTensorDescriptor_t yDesc, const void* y,
                                   const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                   const cudnnTensorDescriptor_t xDesc, const void* x, const void* beta,
                                   const cudnnTensorDescriptor_t dxDesc, void* dx) {
  const char* fn = "cudnnPoolingBackward";
  if (!usable_handle(handle, fn)) return fail(CUDNN_STATUS_BAD_PARAM, "invalid handle");
  Pool p{};
  if (cudnnStatus_t st = check_pool(fn, poolingDesc, xDesc, yDesc, p); st != CUDNN_STATUS_SUCCESS) return st;
  if (!usable(dyDesc, fn, "dy descriptor") || !usable(dxDesc, fn, "dx descriptor"))
    return fail(CUDNN_STATUS_BAD_PARAM, "NULL or unset descriptor");
  if (dyDesc->dtype != yDesc->dtype || dxDesc->dtype != xDesc->dtype)
    return fail(CUDNN_STATUS_BAD_PARAM, "dy/dx dtypes differ from y/x");
  if (dyDesc->nb != 4 || dxDesc->nb != 4) return fail(CUDNN_STATUS_NOT_SUPPORTED, "2-D pooling needs 4-D tensors");
  for (int i = 0; i < 4; ++i) {
    if (dyDesc->dim[i] != yDesc->dim[i] || dxDesc->dim[i] != xDesc->dim[i])
      return fail(i < 2 ? CUDNN_STATUS_BAD_PARAM : CUDNN_STATUS_NOT_SUPPORTED, "dy/dx dims differ from y/x");
  }
  if (!alpha || !beta || !y || !dy || !x || !dx) return fail(CUDNN_STATUS_BAD_PARAM, "NULL pointer");
  if (strides_overlap(*dxDesc)) detail::lint(fmt::format("{}: output strides overlap: {}", fn, describe(*dxDesc)));
  check_tensor_range(*yDesc, y, "cudnnPoolingBackward y");
  check_tensor_range(*dyDesc, dy, "cudnnPoolingBackward dy");
  check_tensor_range(*xDesc, x, "cudnnPoolingBackward x");
  check_tensor_range(*dxDesc, dx, "cudnnPoolingBackward dx");
  const bool dbl = xDesc->dtype == CUDNN_DATA_DOUBLE;
  const double a = read_scale(alpha, dbl), b = read_scale(beta, dbl);
  detail::log_call(fn, fmt::format("x {} dy {} dx {} {} window {}x{} pad {},{} stride {},{} alpha {} beta {}",
                                   describe(*xDesc), describe(*dyDesc), describe(*dxDesc), pool_mode_name(p.mode), p.kh,
                                   p.kw, p.ph, p.pw, p.u, p.v, a, b));
  const View4 dyv = view4(*dyDesc);
  std::vector<double> r(size_t(p.x.count()), 0.0);  // packed NCHW like x
  auto at = [&](int n, int c, int h, int w) -> double& {
    return r[((size_t(n) * p.x.c + c) * p.x.h + h) * p.x.w + w];
  };
  for (int n = 0; n < p.y.n; ++n)
    for (int c = 0; c < p.y.c; ++c)
      for (int oh = 0; oh < p.y.h; ++oh)
        for (int ow = 0; ow < p.y.w; ++ow) {
          const Window w = window_of(p, oh, ow);
          const double g = load(dy, dyv.off(n, c, oh, ow), dyv.e);
          if (is_max(p.mode)) {
            int ah, aw;
            window_max(p, x, n, c, w, ah, aw);
            if (ah >= 0) at(n, c, ah, aw) += g;
            continue;
          }
          const double d = divisor(p, w);
          for (int h = w.h0; h < w.h1; ++h)
            for (int q = w.w0; q < w.w1; ++q) at(n, c, h, q) += g / d;
        }
  blend_store(view4(*dxDesc), dx, r, a, b);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnAddTensor(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t aDesc, const void* A,
                             const void* beta, const cudnnTensorDescriptor_t cDesc, void* C) {
  const char* fn = "cudnnAddTensor";
  if (!usable_handle(handle, fn)) return fail(CUDNN_STATUS_BAD_PARAM, "invalid handle");
  if (!usable(aDesc, fn, "A descriptor") || !usable(cDesc, fn, "C descriptor"))
    return fail(CUDNN_STATUS_BAD_PARAM, "NULL or unset descriptor");
  if (!alpha || !beta || !A || !C) return fail(CUDNN_STATUS_BAD_PARAM, "NULL pointer");
  if (cDesc->nb > 5 || aDesc->nb != cDesc->nb) return fail(CUDNN_STATUS_BAD_PARAM, "ranks differ or exceed 5");
  if (cDesc->nb < 4) return fail(CUDNN_STATUS_NOT_SUPPORTED, "AddTensor needs 4-D or 5-D tensors");
  if (aDesc->dtype != cDesc->dtype) return fail(CUDNN_STATUS_BAD_PARAM, "A and C dtypes differ");
  if (!float_type(cDesc->dtype)) return fail(CUDNN_STATUS_NOT_SUPPORTED, "AddTensor data type");
  for (int i = 0; i < cDesc->nb; ++i)
    if (aDesc->dim[i] != cDesc->dim[i] && aDesc->dim[i] != 1)
      return fail(CUDNN_STATUS_BAD_PARAM, "each dim of A must equal C's or be 1");
  check_tensor_range(*aDesc, A, "cudnnAddTensor A");
  check_tensor_range(*cDesc, C, "cudnnAddTensor C");
  const bool dbl = cDesc->dtype == CUDNN_DATA_DOUBLE;
  const double a = read_scale(alpha, dbl), b = read_scale(beta, dbl);
  detail::log_call(fn, fmt::format("A {} C {} alpha {} beta {}", describe(*aDesc), describe(*cDesc), a, b));
  const Elem e = elem_of(cDesc->dtype);
  for_each_index(*cDesc, [&](const int* idx) {
    int aidx[CUDNN_DIM_MAX];
    for (int i = 0; i < cDesc->nb; ++i) aidx[i] = aDesc->dim[i] == 1 ? 0 : idx[i];
    const double r = load(A, offset_of(*aDesc, aidx), e);
    const int64_t o = offset_of(*cDesc, idx);
    store(C, o, e, b == 0.0 ? a * r : a * r + b * load(C, o, e));
  });
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetTensor(cudnnHandle_t handle, const cudnnTensorDescriptor_t yDesc, void* y, const void* valuePtr) {
  const char* fn = "cudnnSetTensor";
  if (!usable_handle(handle, fn)) return fail(CUDNN_STATUS_BAD_PARAM, "invalid handle");
  if (!usable(yDesc, fn, "y descriptor")) return fail(CUDNN_STATUS_BAD_PARAM, "NULL or unset descriptor");
  if (!y || !valuePtr) return fail(CUDNN_STATUS_BAD_PARAM, "NULL pointer");
  const Elem e = elem_of(yDesc->dtype);
  if (e == Elem::none) return fail(CUDNN_STATUS_NOT_SUPPORTED, "SetTensor data type");
  check_tensor_range(*yDesc, y, "cudnnSetTensor y");
  // valuePtr holds one element of y's type (unverified, §7): copy it bit for bit.
  const double v = load(valuePtr, 0, e);
  detail::log_call(fn, fmt::format("y {} value {}", describe(*yDesc), v));
  for_each_index(*yDesc, [&](const int* idx) { store(y, offset_of(*yDesc, idx), e, v); });
  return CUDNN_STATUS_SUCCESS;
}

}  // extern "C"
