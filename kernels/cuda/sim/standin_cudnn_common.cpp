// Shared pieces of the cuDNN stand-in: dtype tables, strided views, range checks and the blending
// rule of docs/cuda-libs-semantics.md §12 (double accumulation, one rounding at the store, beta == 0 does
// not read the destination).
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <numeric>

#include "kernels/cuda/sim/standin.h"

namespace rtune::sim::standin {

Elem elem_of(cudnnDataType_t t) {
  switch (t) {
    case CUDNN_DATA_FLOAT: return Elem::f32;
    case CUDNN_DATA_DOUBLE: return Elem::f64;
    case CUDNN_DATA_HALF: return Elem::f16;
    case CUDNN_DATA_BFLOAT16: return Elem::bf16;
    case CUDNN_DATA_INT8: return Elem::i8;
    case CUDNN_DATA_UINT8: return Elem::u8;
    case CUDNN_DATA_INT32: return Elem::i32;
    default: return Elem::none;
  }
}

size_t cudnn_type_bytes(cudnnDataType_t t) {
  switch (t) {
    case CUDNN_DATA_INT8x4: case CUDNN_DATA_UINT8x4: return 4;
    case CUDNN_DATA_INT8x32: return 32;
    default: return elem_bytes(elem_of(t));
  }
}

const char* cudnn_type_name(cudnnDataType_t t) {
  switch (t) {
    case CUDNN_DATA_FLOAT: return "FLOAT";
    case CUDNN_DATA_DOUBLE: return "DOUBLE";
    case CUDNN_DATA_HALF: return "HALF";
    case CUDNN_DATA_BFLOAT16: return "BFLOAT16";
    case CUDNN_DATA_INT8: return "INT8";
    case CUDNN_DATA_UINT8: return "UINT8";
    case CUDNN_DATA_INT32: return "INT32";
    default: return "OTHER";
  }
}

double read_scale(const void* p, bool is_double) {
  return is_double ? *static_cast<const double*>(p) : double(*static_cast<const float*>(p));
}

View4 view4(const cudnnTensorStruct& d) {
  return View4{d.dim[0], d.dim[1], d.dim[2], d.dim[3], d.stride[0], d.stride[1], d.stride[2], d.stride[3],
               elem_of(d.dtype)};
}

Extent extent_of(const int* dim, const int* stride, int nb) {
  int64_t lo = 0, hi = 0;
  for (int i = 0; i < nb; ++i) {
    if (dim[i] <= 0) return {};
    const int64_t reach = int64_t(dim[i] - 1) * stride[i];
    (reach < 0 ? lo : hi) += reach;
  }
  return {lo, hi - lo + 1};
}

void check_tensor_range(const cudnnTensorStruct& d, const void* ptr, const char* what) {
  const Extent e = extent_of(d.dim.data(), d.stride.data(), d.nb);
  const size_t es = cudnn_type_bytes(d.dtype);
  check_bytes(static_cast<const char*>(ptr) + e.lo * int64_t(es), size_t(e.span) * es, what);
}

std::vector<double> gather(const View4& v, const void* ptr) {
  std::vector<double> out(size_t(v.count()));
  size_t i = 0;
  for (int n = 0; n < v.n; ++n)
    for (int c = 0; c < v.c; ++c)
      for (int h = 0; h < v.h; ++h)
        for (int w = 0; w < v.w; ++w) out[i++] = load(ptr, v.off(n, c, h, w), v.e);
  return out;
}

void blend_store(const View4& v, void* ptr, const std::vector<double>& r, double alpha, double beta) {
  size_t i = 0;
  for (int n = 0; n < v.n; ++n)
    for (int c = 0; c < v.c; ++c)
      for (int h = 0; h < v.h; ++h)
        for (int w = 0; w < v.w; ++w, ++i) {
          const int64_t o = v.off(n, c, h, w);
          const double val = beta == 0.0 ? alpha * r[i] : alpha * r[i] + beta * load(ptr, o, v.e);
          store(ptr, o, v.e, val);
        }
}

namespace {
// Do the strides equal the packed strides for this dim order (dims of extent 1 are free)?
bool packed_in_order(const cudnnTensorStruct& d, std::initializer_list<int> order_inner_first) {
  int64_t expect = 1;
  for (int i : order_inner_first) {
    if (d.dim[i] != 1 && d.stride[i] != expect) return false;
    expect *= d.dim[i];
  }
  return true;
}
}  // namespace

Layout layout_of(const cudnnTensorStruct& d) {
  if (d.nb != 4) return Layout::other;
  const bool nchw = packed_in_order(d, {3, 2, 1, 0});
  const bool nhwc = packed_in_order(d, {1, 3, 2, 0});
  if (nchw && nhwc) return Layout::any;
  if (nchw) return Layout::nchw;
  if (nhwc) return Layout::nhwc;
  return Layout::other;
}

bool has_negative_stride(const cudnnTensorStruct& d) {
  for (int i = 0; i < d.nb; ++i)
    if (d.stride[i] < 0) return true;
  return false;
}

bool strides_overlap(const cudnnTensorStruct& d) {
  // Sort dims (extent > 1) by stride; each stride must exceed the reach of all the smaller ones.
  std::vector<std::pair<int64_t, int>> s;
  for (int i = 0; i < d.nb; ++i)
    if (d.dim[i] > 1) s.emplace_back(std::llabs(int64_t(d.stride[i])), d.dim[i]);
  std::sort(s.begin(), s.end());
  int64_t reach = 0;  // max offset covered by the dims seen so far
  for (auto [stride, dim] : s) {
    if (stride <= reach) return true;
    reach += stride * (dim - 1);
  }
  return false;
}

std::string describe(const cudnnTensorStruct& d) {
  std::vector<int> dim(d.dim.begin(), d.dim.begin() + d.nb), st(d.stride.begin(), d.stride.begin() + d.nb);
  return fmt::format("[{}] s[{}] {}", fmt::join(dim, ","), fmt::join(st, ","), cudnn_type_name(d.dtype));
}

std::string describe(const cudnnFilterStruct& d) {
  std::vector<int> dim(d.dim.begin(), d.dim.begin() + d.nb);
  return fmt::format("[{}] {} {}", fmt::join(dim, ","), d.format == CUDNN_TENSOR_NHWC ? "KRSC" : "KCRS",
                     cudnn_type_name(d.dtype));
}

namespace {
template <class D>
bool usable_desc(const D* d, const char* fn, const char* name) {
  if (!d) return false;
  if (d->poisoned) detail::lint(fmt::format("{}: {} is used after a failed Set call", fn, name));
  return d->set && !d->poisoned;
}
}  // namespace

bool usable(const cudnnTensorStruct* d, const char* fn, const char* name) { return usable_desc(d, fn, name); }
bool usable(const cudnnFilterStruct* d, const char* fn, const char* name) { return usable_desc(d, fn, name); }
bool usable(const cudnnConvolutionStruct* d, const char* fn, const char* name) { return usable_desc(d, fn, name); }
bool usable(const cudnnPoolingStruct* d, const char* fn, const char* name) { return usable_desc(d, fn, name); }

thread_local std::string t_last_error;

cudnnStatus_t fail(cudnnStatus_t s, std::string msg) {
  t_last_error = std::move(msg);
  return s;
}

const std::string& last_error() { return t_last_error; }

void scribble(void* ptr, size_t bytes) {
  if (ptr && bytes) std::memset(ptr, 0xff, bytes);  // all-ones bytes read as NaN in every float type
}

}  // namespace rtune::sim::standin
