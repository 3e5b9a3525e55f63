// Per-process cuDNN / cuBLAS handles of the CUDA backend, bound to one stream (the default stream:
// every op runs in order on it, so memory freed to the caching allocator is safe to reuse), the
// cuBLAS workspace (set again after every cublasSetStream, docs/cuda-libs-semantics.md §2) and the
// device-side error record. Layout helpers are in layout.h, cuDNN descriptors in cudnn_desc.h.
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

}  // namespace rtune::cuda
