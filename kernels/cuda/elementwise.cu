// CUDA elementwise ops, copies and reductions with the CPU oracle's semantics (kernels/cpu/
// elementwise.cpp: torch.add/sub/mul/relu/sum and the fused relu(a + b), no broadcasting except
// sum_to). Own kernels, compiled by nvcc and, for the simulated device, as host C++. Copies convert
// between every dtype pair (u8/i64/f16/bf16/f32/f64) through arbitrary strides; 16-bit floats
// compute in float; sums accumulate in double in a fixed tree order (deterministic run to run).
#include <cmath>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/handles.h"
#include "kernels/cuda/layout.h"
#include "kernels/cuda/kernel_util.cuh"

namespace rtune::cuda {

namespace {

// ---------------------------------------------------------------- kernels

template <class D, class S>
RT_GLOBAL void copy_kernel(const S* src, Indexer si, D* dst, Indexer di, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[di.offset(i)] = convert<D, S>(src[si.offset(i)]);
}

template <class T>
RT_GLOBAL void fill_kernel(T* p, Indexer ix, T v, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    p[ix.offset(i)] = v;
}

template <class T, class F>
RT_GLOBAL void binary_kernel(const T* a, const T* b, T* y, int64_t n, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = store<T>(f(load(a[i]), load(b[i])));
}

template <class T, class F>
RT_GLOBAL void unary_kernel(const T* x, T* y, int64_t n, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = store<T>(f(load(x[i])));
}

struct AddF { template <class C> RT_HOST_DEVICE C operator()(C a, C b) const { return a + b; } };
struct SubF { template <class C> RT_HOST_DEVICE C operator()(C a, C b) const { return a - b; } };
struct MulF { template <class C> RT_HOST_DEVICE C operator()(C a, C b) const { return a * b; } };
// relu_backward(gy, y): the gradient passes where the output is positive.
struct ReluBackF { template <class C> RT_HOST_DEVICE C operator()(C g, C y) const { return y > C(0) ? g : C(0); } };
template <class C> struct ScaleF { C s; RT_HOST_DEVICE C operator()(C v) const { return s * v; } };
template <class C> struct AddScalarF { C s; RT_HOST_DEVICE C operator()(C v) const { return v + s; } };
template <class C> struct InvSqrtAddF {
  C s;
  RT_HOST_DEVICE C operator()(C v) const { return C(1.0 / sqrt(double(v + s))); }
};
// As the CPU oracle: NaN maps to 0 (the comparison is false).
struct ReluF { template <class C> RT_HOST_DEVICE C operator()(C v) const { return v > C(0) ? v : C(0); } };
// relu(a + b) in one pass (a ResNet block's residual); the sum is clamped as ReluF clamps.
struct AddReluF {
  template <class C> RT_HOST_DEVICE C operator()(C a, C b) const { return ReluF{}(C(a + b)); }
};

// Per-block partial sums in double (grid-stride), then one block adds the partials in order.
template <class T>
RT_GLOBAL void sum_partial_kernel(const T* x, int64_t n, double* partial) {
  __shared__ double smem[kThreads];
  double acc = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    acc += double(load(x[i]));
  double s = block_sum(acc, smem);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}
template <class T>
RT_GLOBAL void sum_final_kernel(const double* partial, int64_t parts, T* out) {
  __shared__ double smem[kThreads];
  double acc = 0;
  for (int64_t i = threadIdx.x; i < parts; i += blockDim.x) acc += partial[i];
  double s = block_sum(acc, smem);
  if (threadIdx.x == 0) *out = store<T>(s);
}

// sum_to: one thread per output element adds, in double, the input elements mapping onto it.
struct SumToGeom {
  int nd = 0;
  int64_t size[8] = {};      // input shape
  int64_t stride[8] = {};    // input strides (dense input)
  bool reduced[8] = {};      // dims summed away (leading or size 1 in the target)
  int64_t reduce_count = 1;  // product of the reduced sizes
};
template <class T>
RT_GLOBAL void sum_to_kernel(const T* x, SumToGeom g, T* out, int64_t m) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < m; o += int64_t(gridDim.x) * blockDim.x) {
    int64_t base = 0, rest = o;
    for (int d = g.nd - 1; d >= 0; --d) {
      if (g.reduced[d]) continue;
      base += (rest % g.size[d]) * g.stride[d];
      rest /= g.size[d];
    }
    double acc = 0;
    for (int64_t r = 0; r < g.reduce_count; ++r) {
      int64_t off = base, k = r;
      for (int d = g.nd - 1; d >= 0; --d) {
        if (!g.reduced[d]) continue;
        off += (k % g.size[d]) * g.stride[d];
        k /= g.size[d];
      }
      acc += double(load(x[off]));
    }
    out[o] = store<T>(acc);
  }
}

// ---------------------------------------------------------------- host side

template <class F>
void binary(const char* op, const Tensor& a0, const Tensor& b0, Tensor& y, F f) {
  require_same_shape(op, a0, b0);
  require_same_shape(op, a0, y);
  require_same_dtype(op, a0, b0);
  require_same_dtype(op, a0, y);
  MemoryFormat fmt = y.suggest_memory_format();
  RTUNE_CHECK(y.is_contiguous(fmt), "{}: output must be dense, got strides {}", op, shape_str(y.strides()));
  Tensor a = dense_in(a0, fmt), b = dense_in(b0, fmt);
  int64_t n = y.numel();
  if (n == 0) return;
  dispatch_floating(op, y, [&](auto tag) {
    using T = decltype(tag);
    launch(binary_kernel<T, F>, grid_for(n, kThreads), kThreads, 0, stream(), dptr<const T>(a), dptr<const T>(b),
           dptr<T>(y), n, f);
  });
}

template <template <class> class F>
void unary_scalar(const char* op, const Tensor& x0, double s, Tensor& y) {
  require_same_shape(op, x0, y);
  require_same_dtype(op, x0, y);
  MemoryFormat fmt = y.suggest_memory_format();
  RTUNE_CHECK(y.is_contiguous(fmt), "{}: output must be dense, got strides {}", op, shape_str(y.strides()));
  Tensor x = dense_in(x0, fmt);
  int64_t n = y.numel();
  if (n == 0) return;
  dispatch_floating(op, y, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    launch(unary_kernel<T, F<C>>, grid_for(n, kThreads), kThreads, 0, stream(), dptr<const T>(x), dptr<T>(y), n,
           F<C>{C(s)});
  });
}

template <class T> struct ReluT { RT_HOST_DEVICE T operator()(T v) const { return ReluF{}(v); } };

bool same_dense_layout(const Tensor& a, const Tensor& b) { return a.strides() == b.strides() && is_dense(a); }

}  // namespace

void copy(const Tensor& src, Tensor& dst) {
  require_same_shape("copy", src, dst);
  int64_t n = dst.numel();
  if (n == 0) return;
  size_t bytes = size_t(n) * dtype_size(dst.dtype());
  if (src.dtype() == dst.dtype() && same_dense_layout(src, dst)) {
    if (src.raw_data() == dst.raw_data()) return;
    const char *s = static_cast<const char*>(src.raw_data()), *d = static_cast<const char*>(dst.raw_data());
    RTUNE_CHECK(s + bytes <= d || d + bytes <= s, "copy: source {} and destination {} overlap", src.str(), dst.str());
    rt::memcpy_d2d_async(dst.raw_data(), src.raw_data(), bytes, stream());
    return;
  }
  Indexer si = indexer_of(src), di = indexer_of(dst);
  if (src.strides() == dst.strides() && is_dense(dst)) {  // same dense layout: walk memory linearly
    si = Indexer{};
    si.nd = 1;
    si.size[0] = n;
    si.stride[0] = 1;
    di = si;
  }
  dispatch_all(src.dtype(), [&](auto stag) {
    dispatch_all(dst.dtype(), [&](auto dtag) {
      using S = decltype(stag);
      using D = decltype(dtag);
      launch(copy_kernel<D, S>, grid_for(n, kThreads), kThreads, 0, stream(), dptr<const S>(src), si, dptr<D>(dst),
             di, n);
    });
  });
}

void fill(Tensor& t, double value) {
  int64_t n = t.numel();
  if (n == 0) return;
  dispatch_all(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    launch(fill_kernel<T>, grid_for(n, kThreads), kThreads, 0, stream(), dptr<T>(t), indexer_of(t),
           convert<T, double>(value), n);
  });
}

void add(const Tensor& a, const Tensor& b, Tensor& y) { binary("add", a, b, y, AddF{}); }
void sub(const Tensor& a, const Tensor& b, Tensor& y) { binary("sub", a, b, y, SubF{}); }
void mul(const Tensor& a, const Tensor& b, Tensor& y) { binary("mul", a, b, y, MulF{}); }
void add_(Tensor& a, const Tensor& b) { binary("add_", a, b, a, AddF{}); }
void scale(const Tensor& x, double s, Tensor& y) { unary_scalar<ScaleF>("scale", x, s, y); }
void add_scalar(const Tensor& x, double s, Tensor& y) { unary_scalar<AddScalarF>("add_scalar", x, s, y); }
void inv_sqrt_add(const Tensor& x, double s, Tensor& y) { unary_scalar<InvSqrtAddF>("inv_sqrt_add", x, s, y); }
void relu_forward(const Tensor& x0, Tensor& y) {
  require_same_shape("relu_forward", x0, y);
  require_same_dtype("relu_forward", x0, y);
  MemoryFormat fmt = y.suggest_memory_format();
  RTUNE_CHECK(y.is_contiguous(fmt), "relu_forward: output must be dense, got strides {}", shape_str(y.strides()));
  Tensor x = dense_in(x0, fmt);
  int64_t n = y.numel();
  if (n == 0) return;
  dispatch_floating("relu_forward", y, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    launch(unary_kernel<T, ReluT<C>>, grid_for(n, kThreads), kThreads, 0, stream(), dptr<const T>(x), dptr<T>(y), n,
           ReluT<C>{});
  });
}
void relu_backward(const Tensor& gy, const Tensor& y, Tensor& gx) { binary("relu_backward", gy, y, gx, ReluBackF{}); }
void add_relu_forward(const Tensor& a, const Tensor& b, Tensor& y) { binary("add_relu_forward", a, b, y, AddReluF{}); }

void sum_all(const Tensor& x0, Tensor& out) {
  require_same_dtype("sum_all", x0, out);
  RTUNE_CHECK(out.numel() == 1, "sum_all: output must have one element, got {}", out.str());
  Tensor x = is_dense(x0) ? x0 : x0.contiguous();
  int64_t n = x.numel();
  dim3 grid = grid_for(n, kThreads);
  Tensor partial = empty({int64_t(grid.x)}, {DType::f64, x.device()});
  dispatch_floating("sum_all", x, [&](auto tag) {
    using T = decltype(tag);
    launch(sum_partial_kernel<T>, grid, kThreads, 0, stream(), dptr<const T>(x), n, dptr<double>(partial));
    launch(sum_final_kernel<T>, dim3(1), kThreads, 0, stream(), dptr<const double>(partial), int64_t(grid.x),
           dptr<T>(out));
  });
}

Tensor sum_to(const Tensor& x0, const Shape& shape) {
  if (x0.shape() == shape) return x0;
  RTUNE_CHECK(x0.shape().size() >= shape.size(), "sum_to: cannot reduce {} to {}", x0.str(), shape_str(shape));
  RTUNE_CHECK(x0.dim() <= 8, "sum_to: at most 8 dimensions, got {}", x0.str());
  size_t lead = x0.shape().size() - shape.size();
  Tensor x = x0.contiguous();
  SumToGeom g;
  g.nd = int(x.dim());
  for (size_t i = 0; i < x.shape().size(); ++i) {
    g.size[i] = x.shape()[i];
    g.stride[i] = x.strides()[i];
    if (i < lead) {
      g.reduced[i] = true;
    } else {
      RTUNE_CHECK(shape[i - lead] == x.shape()[i] || shape[i - lead] == 1, "sum_to: cannot reduce {} to {}", x.str(),
                  shape_str(shape));
      g.reduced[i] = shape[i - lead] == 1 && x.shape()[i] != 1;
    }
    if (g.reduced[i]) g.reduce_count *= g.size[i];
  }
  Tensor out = empty(shape, {x.dtype(), x.device()});
  int64_t m = out.numel();
  if (m == 0) return out;
  dispatch_floating("sum_to", x, [&](auto tag) {
    using T = decltype(tag);
    launch(sum_to_kernel<T>, grid_for(m, kThreads), kThreads, 0, stream(), dptr<const T>(x), g, dptr<T>(out), m);
  });
  return out;
}

}  // namespace rtune::cuda
