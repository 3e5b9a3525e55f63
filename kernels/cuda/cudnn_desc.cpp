// cuDNN descriptor wrappers (cudnn_desc.h).
#include "kernels/cuda/cudnn_desc.h"

#include "kernels/cuda/check.h"

namespace rtune::cuda {

cudnnDataType_t cudnn_dtype(DType t, const char* op) {
  switch (t) {
    case DType::f32: return CUDNN_DATA_FLOAT;
    case DType::f64: return CUDNN_DATA_DOUBLE;
    case DType::bf16: return CUDNN_DATA_BFLOAT16;
    case DType::f16: return CUDNN_DATA_HALF;
    default: fail("{}: cuDNN computes on floating tensors, got {}", op, dtype_name(t));
  }
}

TensorDesc::TensorDesc() { CUDNN_CHECK(cudnnCreateTensorDescriptor(&d_), "cudnnCreateTensorDescriptor"); }
TensorDesc::~TensorDesc() { cudnnDestroyTensorDescriptor(d_); }

void TensorDesc::set_dims(cudnnDataType_t dt, int n, int c, int h, int w, MemoryFormat fmt, const char* op) {
  Shape st = contiguous_strides({n, c, h, w}, fmt);
  CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(d_, dt, n, c, h, w, int(st[0]), int(st[1]), int(st[2]), int(st[3])),
              "{}: tensor descriptor [{}, {}, {}, {}]", op, n, c, h, w);
}

void TensorDesc::set(const Tensor& t, MemoryFormat fmt, const char* op) {
  RTUNE_CHECK(t.dim() >= 1 && t.dim() <= 4, "{}: cuDNN tensors here are 1-d to 4-d, got {}", op, t.str());
  Shape s = t.shape(), st = t.strides();
  while (s.size() < 4) {
    s.push_back(1);
    st.push_back(1);
  }
  Shape canon = contiguous_strides(s, fmt);
  for (size_t i = 0; i < 4; ++i) {
    RTUNE_CHECK(s[i] <= INT32_MAX && st[i] <= INT32_MAX, "{}: {} is too large for a cuDNN descriptor", op, t.str());
    if (s[i] == 1 || i >= size_t(t.dim())) st[i] = canon[i];
  }
  CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(d_, cudnn_dtype(t.dtype(), op), int(s[0]), int(s[1]), int(s[2]),
                                           int(s[3]), int(st[0]), int(st[1]), int(st[2]), int(st[3])),
              "{}: tensor descriptor for {} strides {}", op, t.str(), shape_str(t.strides()));
}

FilterDesc::FilterDesc() { CUDNN_CHECK(cudnnCreateFilterDescriptor(&d_), "cudnnCreateFilterDescriptor"); }
FilterDesc::~FilterDesc() { cudnnDestroyFilterDescriptor(d_); }

void FilterDesc::set(const Tensor& w, MemoryFormat fmt, const char* op) {
  RTUNE_CHECK(w.dim() == 4 && w.is_contiguous(fmt), "{}: filter {} must be dense in the op's layout", op, w.str());
  CUDNN_CHECK(cudnnSetFilter4dDescriptor(d_, cudnn_dtype(w.dtype(), op),
                                         fmt == MemoryFormat::channels_last ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
                                         int(w.size(0)), int(w.size(1)), int(w.size(2)), int(w.size(3))),
              "{}: filter descriptor for {}", op, w.str());
}

}  // namespace rtune::cuda
