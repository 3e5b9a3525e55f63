// Memory-format helpers of the CUDA ops (layout.h).
#include "kernels/cuda/layout.h"

namespace rtune::cuda {

Tensor dense_in(const Tensor& t, MemoryFormat fmt) {
  if (fmt == MemoryFormat::channels_last && t.dim() != 4) fmt = MemoryFormat::contiguous;
  return t.is_contiguous(fmt) ? t : t.contiguous(fmt);
}

bool is_dense(const Tensor& t) { return t.is_contiguous() || (t.dim() == 4 && t.is_contiguous(MemoryFormat::channels_last)); }

}  // namespace rtune::cuda
