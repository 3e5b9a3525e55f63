// Which memory format a CUDA op computes in and how its operands get there: dense NCHW or NHWC
// (channels-last) tensors go to cuDNN/cuBLAS as they are, anything else through a dense copy.
#pragma once
#include <utility>

#include "engine/tensor.h"
#include "kernels/cuda/cuda_ops.h"

namespace rtune::cuda {

// t itself when dense in `fmt`, else a copy in `fmt` (on t's device).
Tensor dense_in(const Tensor& t, MemoryFormat fmt);
// Whether t is dense in either layout (so a kernel may write it through its strides).
bool is_dense(const Tensor& t);

// Runs body(out) with out = t when t is dense in `fmt`, else a temporary in `fmt` copied into t after:
// ops write their outputs densely, callers may pass any strides.
template <class F> void into_layout(Tensor& t, MemoryFormat fmt, F&& body) {
  if (t.is_contiguous(fmt)) {
    body(t);
    return;
  }
  Tensor tmp = empty(t.shape(), {t.dtype(), t.device(), fmt});
  body(tmp);
  copy(tmp, t);
}
// into_layout in t's own layout when t is dense, NCHW otherwise.
template <class F> void dense_out(Tensor& t, F&& body) {
  into_layout(t, is_dense(t) ? t.suggest_memory_format() : MemoryFormat::contiguous, std::forward<F>(body));
}

}  // namespace rtune::cuda
