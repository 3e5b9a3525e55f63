// RAII wrappers for the cuDNN descriptors the ops build per call, the cuDNN data type of a dtype,
// and the alpha/beta scalars in the type cuDNN expects (docs/cuda-libs-semantics.md §0).
#pragma once
#include <cudnn.h>

#include "engine/tensor.h"

namespace rtune::cuda {

// cuDNN data type of a floating tensor dtype (f32, f64, bf16, f16); throws for others.
cudnnDataType_t cudnn_dtype(DType t, const char* op);
// cuDNN's alpha = 1 and beta = 0: float for FLOAT/HALF/BFLOAT16 tensors, double for DOUBLE (semantics §0).
struct Scalars {
  float f1 = 1.f, f0 = 0.f;
  double d1 = 1.0, d0 = 0.0;
  bool dbl;
  explicit Scalars(DType t) : dbl(t == DType::f64) {}
  const void* one() const { return dbl ? static_cast<const void*>(&d1) : &f1; }
  const void* zero() const { return dbl ? static_cast<const void*>(&d0) : &f0; }
};

class TensorDesc {
 public:
  TensorDesc();
  ~TensorDesc();
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
  // 4-d descriptor of t (lower ranks get trailing 1s) with its strides; size-1 dims get the
  // canonical stride of `fmt` so cuDNN sees one packed layout.
  void set(const Tensor& t, MemoryFormat fmt, const char* op);
  void set_dims(cudnnDataType_t dt, int n, int c, int h, int w, MemoryFormat fmt, const char* op);
  cudnnTensorDescriptor_t get() const { return d_; }
 private:
  cudnnTensorDescriptor_t d_ = nullptr;
};

class FilterDesc {
 public:
  FilterDesc();
  ~FilterDesc();
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
  void set(const Tensor& w, MemoryFormat fmt, const char* op);  // KCRS (contiguous) or KRSC (channels_last)
  cudnnFilterDescriptor_t get() const { return d_; }
 private:
  cudnnFilterDescriptor_t d_ = nullptr;
};

}  // namespace rtune::cuda
