# The CUDA backend (kernels/cuda, issue 9): cuDNN, cuBLAS and own kernels behind the kernels/ façade.
# One set of sources, two builds: RTUNE_CUDA compiles the .cu files with nvcc and links the NVIDIA
# libraries; RTUNE_CUDA_SIM compiles the same .cu files as host C++ for the simulated device
# (cmake/cuda_sim.cmake) and links the cuDNN/cuBLAS stand-ins (cmake/cuda_standins.cmake).

if(NOT RTUNE_CUDA AND NOT RTUNE_CUDA_SIM)
  return()
endif()

set(RTUNE_CUDA_KERNEL_SOURCES
  kernels/cuda/elementwise.cu
  kernels/cuda/images.cu
  kernels/cuda/conv2d.cu
  kernels/cuda/batch_norm.cu
  kernels/cuda/sync_batch_norm.cu
  kernels/cuda/pool.cu
  kernels/cuda/linear.cu
  kernels/cuda/softmax.cu
  kernels/cuda/optim.cu)
add_library(rtune_cuda STATIC ${RTUNE_CUDA_KERNEL_SOURCES} kernels/cuda/allocator.cpp kernels/cuda/handles.cpp
            kernels/cuda/check.cpp kernels/cuda/layout.cpp kernels/cuda/cudnn_desc.cpp kernels/cuda/transfer.cpp
            kernels/cuda/nccl_comm.cpp)
target_link_libraries(rtune_cuda PUBLIC rtune_core)

if(RTUNE_CUDA_SIM)
  rtune_sim_cu_sources(${RTUNE_CUDA_KERNEL_SOURCES})
  target_link_libraries(rtune_cuda PUBLIC rtune_cuda_sim_exec rtune_cudnn_standin rtune_cublas_standin rtune_nccl_standin)
else()
  # NCCL for data-parallel GPUs (kernels/cuda/nccl_comm.cpp): beside cuBLAS in the CUDA toolkit folder here;
  # on a GPU machine, the libnccl.so.2 of its PyTorch (pip nvidia-nccl) serves as well.
  find_library(RTUNE_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64 REQUIRED)
  target_include_directories(rtune_cuda SYSTEM PUBLIC ${CUDNN_INCLUDE_DIR})
  target_link_libraries(rtune_cuda PUBLIC rtune_cuda_runtime_real CUDA::cudart CUDA::cublas ${CUDNN_LIBRARY}
                        ${RTUNE_NCCL_LIBRARY})
endif()

# The façade dispatches cuda tensors to this backend.
target_link_libraries(rtune_core PUBLIC rtune_cuda)
target_compile_definitions(rtune_core PRIVATE RTUNE_HAS_CUDA_BACKEND)

# Whole-model tests (the per-op parity is in tests/ops, cmake/core.cmake): run on the simulated device in
# the sim build; on a real GPU build they run on hardware and exit 77 (skipped) where no device is present.
add_library(rtune_cuda_test_util INTERFACE)
target_link_libraries(rtune_cuda_test_util INTERFACE rtune_cuda rtune_test_util)
rtune_add_test(cuda_models SOURCES tests/cuda/test_cuda_models.cpp LIBS rtune_cuda_test_util rtune_finetune)
if(RTUNE_CUDA_SIM)  # the stand-ins' call log and the simulated runtime's counters
  rtune_add_test(cuda_calllog SOURCES tests/cuda/test_cuda_calllog.cpp LIBS rtune_cuda_test_util rtune_finetune)
endif()
rtune_add_test(cuda_bf16 SOURCES tests/cuda/test_cuda_bf16.cpp LIBS rtune_cuda_test_util)
rtune_add_test(cuda_optim_multi SOURCES tests/cuda/test_cuda_optim_multi.cpp
               LIBS rtune_cuda_test_util rtune_finetune)
# CI runs these under ASan + UBSan too (the root labels only cuda_sim*/cuda_standin*).
foreach(t cuda_bf16 cuda_calllog cuda_models cuda_optim_multi)
  if(TEST ${t})
    set_tests_properties(${t} PROPERTIES LABELS asan)
  endif()
endforeach()
