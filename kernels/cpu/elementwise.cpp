// CPU elementwise ops, copies and reductions: torch.add/sub/mul/relu/sum semantics (no broadcasting
// except sum_to, which undoes an expand); add_relu is relu(a + b) fused.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <omp.h>
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"

namespace rtune::cpu {

namespace {

// Visits every element of `shape`, giving element offsets into two strided layouts; the innermost
// dimension runs as a tight loop.
template <class F> void for_each_pair(const Shape& shape, const Shape& sa, const Shape& sb, F&& f) {
  int64_t nd = int64_t(shape.size());
  if (shape_numel(shape) == 0) return;
  if (nd == 0) {
    f(0, 0, 1, 0, 0);
    return;
  }
  int64_t inner = shape[nd - 1], ia = sa[nd - 1], ib = sb[nd - 1];
  std::vector<int64_t> idx(size_t(nd - 1), 0);
  int64_t outer = shape_numel(shape) / std::max<int64_t>(inner, 1);
  for (int64_t o = 0; o < outer; ++o) {
    int64_t oa = 0, ob = 0;
    for (int64_t d = 0; d < nd - 1; ++d) {
      oa += idx[d] * sa[d];
      ob += idx[d] * sb[d];
    }
    f(oa, ob, inner, ia, ib);
    for (int64_t d = nd - 2; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

// out[j * rows + i] = in[i * cols + j] for every image: a rows x cols transpose in 32 x 32 tiles, images and
// tile rows spread over the OpenMP threads.
template <class E> void transpose_images(const E* in, E* out, int64_t images, int64_t rows, int64_t cols) {
  constexpr int64_t kTile = 32;
  const int64_t row_tiles = (rows + kTile - 1) / kTile;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < images; ++n)
    for (int64_t rt = 0; rt < row_tiles; ++rt) {
      const E* a = in + n * rows * cols;
      E* b = out + n * rows * cols;
      const int64_t i1 = std::min(rows, (rt + 1) * kTile);
      for (int64_t j0 = 0; j0 < cols; j0 += kTile) {
        const int64_t j1 = std::min(cols, j0 + kTile);
        for (int64_t i = rt * kTile; i < i1; ++i)
          for (int64_t j = j0; j < j1; ++j) b[j * rows + i] = a[i * cols + j];
      }
    }
}

// A same-dtype copy between the two dense 4-d layouts (NCHW <-> channels-last): a per-image C x HW
// transpose, moved as raw elements (exact). The generic strided loop runs one thread, one gather per
// element: ~10x slower on a ResNet activation. Returns false for any other pair of layouts.
bool copy_between_layouts(const Tensor& src, Tensor& dst) {
  if (src.dim() != 4 || src.dtype() != dst.dtype() || src.numel() == 0) return false;
  const bool src_nchw = src.is_contiguous(), dst_nchw = dst.is_contiguous();
  const bool src_nhwc = src.is_contiguous(MemoryFormat::channels_last), dst_nhwc = dst.is_contiguous(MemoryFormat::channels_last);
  int64_t rows, cols;  // of each image's source matrix
  if (src_nchw && dst_nhwc && !dst_nchw) rows = src.size(1), cols = src.size(2) * src.size(3);
  else if (src_nhwc && !src_nchw && dst_nchw) rows = src.size(2) * src.size(3), cols = src.size(1);
  else return false;
  const int64_t images = src.size(0);
  switch (dtype_size(src.dtype())) {
    case 1: transpose_images(static_cast<const uint8_t*>(src.raw_data()), static_cast<uint8_t*>(dst.raw_data()), images, rows, cols); return true;
    case 2: transpose_images(static_cast<const uint16_t*>(src.raw_data()), static_cast<uint16_t*>(dst.raw_data()), images, rows, cols); return true;
    case 4: transpose_images(static_cast<const uint32_t*>(src.raw_data()), static_cast<uint32_t*>(dst.raw_data()), images, rows, cols); return true;
    case 8: transpose_images(static_cast<const uint64_t*>(src.raw_data()), static_cast<uint64_t*>(dst.raw_data()), images, rows, cols); return true;
    default: return false;
  }
}

bool same_dense_layout(const Tensor& a, const Tensor& b) {
  return a.strides() == b.strides() && (a.is_contiguous() || a.is_contiguous(MemoryFormat::channels_last));
}

template <class F> void binary(const char* op, const Tensor& a0, const Tensor& b0, Tensor& y, F&& f) {
  require_same_shape(op, a0, b0);
  require_same_shape(op, a0, y);
  require_same_dtype(op, a0, b0);
  require_same_dtype(op, a0, y);
  MemoryFormat fmt = y.suggest_memory_format();
  RTUNE_CHECK(y.is_contiguous(fmt), "{}: output must be dense, got strides {}", op, shape_str(y.strides()));
  Tensor a = a0.contiguous(fmt), b = b0.contiguous(fmt);
  int64_t n = y.numel();
  dispatch_float(op, y, [&](auto tag) {
    using T = decltype(tag);
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* py = y.data<T>();
#pragma omp parallel for if (n > (1 << 16)) schedule(static)
    for (int64_t i = 0; i < n; ++i) py[i] = f(pa[i], pb[i]);
  });
}

template <class F> void unary(const char* op, const Tensor& x0, Tensor& y, F&& f) {
  require_same_shape(op, x0, y);
  require_same_dtype(op, x0, y);
  MemoryFormat fmt = y.suggest_memory_format();
  RTUNE_CHECK(y.is_contiguous(fmt), "{}: output must be dense, got strides {}", op, shape_str(y.strides()));
  Tensor x = x0.contiguous(fmt);
  int64_t n = y.numel();
  dispatch_float(op, y, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
#pragma omp parallel for if (n > (1 << 16)) schedule(static)
    for (int64_t i = 0; i < n; ++i) py[i] = f(px[i]);
  });
}


// memmove, spread over the threads when the blocks are large and apart (the residual copied into a fused
// convolution's output: perf measured memmove at 2.4% of a ResNet-50 inference pass on one thread, when
// the add+ReLU it replaced took 3.9% on two).
void move_bytes(void* dst, const void* src, size_t bytes) {
  auto* d = static_cast<char*>(dst);
  const auto* s = static_cast<const char*>(src);
  const bool apart = d + bytes <= s || s + bytes <= d;
  constexpr size_t kChunk = size_t(1) << 18;  // 256 KiB per task
  if (!apart || bytes < 4 * kChunk) {
    std::memmove(d, s, bytes);
    return;
  }
  const int64_t chunks = int64_t((bytes + kChunk - 1) / kChunk);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const size_t off = size_t(c) * kChunk;
    std::memcpy(d + off, s + off, std::min(kChunk, bytes - off));
  }
}
}  // namespace

void copy(const Tensor& src, Tensor& dst) {
  if (src.dtype() == dst.dtype() && same_dense_layout(src, dst)) {
    if (src.raw_data() != dst.raw_data())
      move_bytes(dst.raw_data(), src.raw_data(), size_t(src.numel()) * dtype_size(src.dtype()));
    return;
  }
  if (src.raw_data() != dst.raw_data() && copy_between_layouts(src, dst)) return;
  dispatch_any(src.dtype(), [&](auto stag) {
    dispatch_any(dst.dtype(), [&](auto dtag) {
      using S = decltype(stag);
      using D = decltype(dtag);
      auto* ps = static_cast<const storage_t<S>*>(src.raw_data());
      auto* pd = static_cast<storage_t<D>*>(dst.raw_data());
      for_each_pair(dst.shape(), dst.strides(), src.strides(),
                    [&](int64_t od, int64_t os, int64_t n, int64_t id, int64_t is) {
                      for (int64_t i = 0; i < n; ++i) pd[od + i * id] = convert_elem<D, S>(ps[os + i * is]);
                    });
    });
  });
}

void fill(Tensor& t, double value) {
  dispatch_any(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    storage_t<T> v = convert_elem<T, double>(value);
    auto* p = static_cast<storage_t<T>*>(t.raw_data());
    for_each_pair(t.shape(), t.strides(), t.strides(), [&](int64_t o, int64_t, int64_t n, int64_t s, int64_t) {
      for (int64_t i = 0; i < n; ++i) p[o + i * s] = v;
    });
  });
}

void add(const Tensor& a, const Tensor& b, Tensor& y) { binary("add", a, b, y, [](auto x, auto z) { return x + z; }); }
void sub(const Tensor& a, const Tensor& b, Tensor& y) { binary("sub", a, b, y, [](auto x, auto z) { return x - z; }); }
void mul(const Tensor& a, const Tensor& b, Tensor& y) { binary("mul", a, b, y, [](auto x, auto z) { return x * z; }); }
void add_(Tensor& a, const Tensor& b) { binary("add_", a, b, a, [](auto x, auto z) { return x + z; }); }

void scale(const Tensor& x, double s, Tensor& y) {
  unary("scale", x, y, [s](auto v) { return decltype(v)(s) * v; });
}
void inv_sqrt_add(const Tensor& x, double s, Tensor& y) {
  unary("inv_sqrt_add", x, y, [s](auto v) {
    using T = decltype(v);
    return T(1.0 / std::sqrt(double(v + T(s))));
  });
}
void add_scalar(const Tensor& x, double s, Tensor& y) {
  unary("add_scalar", x, y, [s](auto v) { return v + decltype(v)(s); });
}
void relu_forward(const Tensor& x, Tensor& y) {
  unary("relu_forward", x, y, [](auto v) { return v > 0 ? v : decltype(v)(0); });
}
void relu_backward(const Tensor& gy, const Tensor& y, Tensor& gx) {
  binary("relu_backward", gy, y, gx, [](auto g, auto v) { return v > 0 ? g : decltype(g)(0); });
}

// One pass, no temporary sum: the sum is rounded to T once and clamped as relu_forward does (NaN -> 0),
// so the result equals relu(add(a, b)) bit for bit.
void add_relu_forward(const Tensor& a, const Tensor& b, Tensor& y) {
  binary("add_relu_forward", a, b, y, [](auto x, auto z) {
    auto v = x + z;
    return v > 0 ? v : decltype(v)(0);
  });
}

void sum_all(const Tensor& x0, Tensor& out) {
  require_same_dtype("sum_all", x0, out);
  RTUNE_CHECK(out.numel() == 1, "sum_all: output must have one element, got {}", out.str());
  Tensor x = x0.is_contiguous(x0.suggest_memory_format()) ? x0 : x0.contiguous();
  int64_t n = x.numel();
  dispatch_float("sum_all", x, [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data<T>();
    double acc = 0;
#pragma omp parallel for reduction(+ : acc) if (n > (1 << 16)) schedule(static)
    for (int64_t i = 0; i < n; ++i) acc += double(p[i]);
    *out.data<T>() = T(acc);
  });
}

Tensor sum_to(const Tensor& x0, const Shape& shape) {
  if (x0.shape() == shape) return x0;
  size_t lead = x0.shape().size() - shape.size();
  RTUNE_CHECK(x0.shape().size() >= shape.size(), "sum_to: cannot reduce {} to {}", x0.str(), shape_str(shape));
  Tensor x = x0.contiguous();
  Tensor out = zeros(shape, {x.dtype(), x.device()});
  // Output strides with 0 on the reduced dims map every input element onto its target.
  Shape ost(x.shape().size(), 0);
  Shape dense = contiguous_strides(shape);
  for (size_t i = lead; i < x.shape().size(); ++i) {
    RTUNE_CHECK(shape[i - lead] == x.shape()[i] || shape[i - lead] == 1, "sum_to: cannot reduce {} to {}", x.str(),
                shape_str(shape));
    ost[i] = shape[i - lead] == 1 ? 0 : dense[i - lead];
  }
  dispatch_float("sum_to", x, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for_each_pair(x.shape(), x.strides(), ost, [&](int64_t ox, int64_t oo, int64_t n, int64_t ix, int64_t io) {
      for (int64_t i = 0; i < n; ++i) po[oo + i * io] += px[ox + i * ix];
    });
  });
  return out;
}

}  // namespace rtune::cpu
