// Checks for every cuDNN / cuBLAS call of the CUDA backend: a failed call becomes rtune::Error naming
// the op, the library call, its status and the shapes involved (docs/cuda-libs-semantics.md §1: statuses
// are compared by category, the message carries the exact name). In the simulated build the
// stand-in libraries read device memory from the host, so each call runs inside a device-access
// window (rt::SimDeviceAccess); on the GPU that guard is empty.
#pragma once
#include <cublas_v2.h>
#include <cudnn.h>

#include <string>

#include "engine/error.h"
#include "kernels/cuda/runtime.h"

namespace rtune::cuda {

#ifdef RTUNE_CUDA_SIM
using LibAccess = rt::SimDeviceAccess;
#else
struct LibAccess {};
#endif

const char* cublas_status_name(cublasStatus_t s);
[[noreturn]] void raise_cudnn(cudnnStatus_t s, const char* call, const std::string& context);
[[noreturn]] void raise_cublas(cublasStatus_t s, const char* call, const std::string& context);

}  // namespace rtune::cuda

// CUDNN_CHECK(cudnnConvolutionForward(...), "conv2d_forward x={} w={}", x.str(), w.str()): the
// context is formatted only on failure.
#define CUDNN_CHECK(call, ...)                                                             \
  do {                                                                                     \
    cudnnStatus_t rt_st_;                                                                  \
    {                                                                                      \
      [[maybe_unused]] ::rtune::cuda::LibAccess rt_acc_;                                                  \
      rt_st_ = (call);                                                                     \
    }                                                                                      \
    if (rt_st_ != CUDNN_STATUS_SUCCESS)                                                    \
      ::rtune::cuda::raise_cudnn(rt_st_, #call, fmt::format(__VA_ARGS__));                 \
  } while (0)

#define CUBLAS_CHECK(call, ...)                                                            \
  do {                                                                                     \
    cublasStatus_t rt_st_;                                                                 \
    {                                                                                      \
      [[maybe_unused]] ::rtune::cuda::LibAccess rt_acc_;                                                  \
      rt_st_ = (call);                                                                     \
    }                                                                                      \
    if (rt_st_ != CUBLAS_STATUS_SUCCESS)                                                   \
      ::rtune::cuda::raise_cublas(rt_st_, #call, fmt::format(__VA_ARGS__));                \
  } while (0)
