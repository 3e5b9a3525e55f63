// Per-process cuDNN / cuBLAS handles of the CUDA backend, bound to one stream (the default stream:
// every op runs in order on it, so memory freed to the caching allocator is safe to reuse), and
// the cuBLAS workspace (set again after every cublasSetStream, docs/cuda-libs-semantics.md §2).
// RAII wrappers for the cuDNN descriptors the ops build per call.
#pragma once
#include <cublas_v2.h>
#include <cudnn.h>

#include "engine/tensor.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/runtime.h"

namespace rtune::cuda {

// An error a kernel found on the device (an out-of-range cross-entropy target), reported to the host at
// the next fence instead of by a synchronising check in the op (kernels/cuda/transfer.cpp).
struct DeviceErrorRecord {
  int row;         // -1: no error; set once by atomicCAS
  int classes;
  long long target;
};

struct Handles {
  cudnnHandle_t cudnn = nullptr;
  cublasHandle_t cublas = nullptr;
  rt::Stream stream;
  Storage cublas_workspace;  // from the caching allocator, kept for the process
  Storage error_record;      // one DeviceErrorRecord, all bytes 0xFF (row -1) when clear
};
// Created on first use (needs a device); throws rtune::Error if the libraries cannot start.
Handles& handles();
inline rt::Stream stream() { return handles().stream; }
inline DeviceErrorRecord* device_error_record() {
  return static_cast<DeviceErrorRecord*>(handles().error_record.data());
}

// cuDNN data type of a floating tensor dtype (f32, f64, bf16, f16); throws for others.
cudnnDataType_t cudnn_dtype(DType t, const char* op);
// The memory format a dense 4-d tensor is laid out in: channels_last when it is NHWC-dense and not
// NCHW-dense; contiguous otherwise (also for ambiguous C == 1 or 1×1 planes).
MemoryFormat format_of(const Tensor& t);
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
  into_layout(t, is_dense(t) ? format_of(t) : MemoryFormat::contiguous, std::forward<F>(body));
}

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
