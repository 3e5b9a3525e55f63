# cuDNN / cuBLAS / NCCL CPU stand-ins for the simulated CUDA device (RTUNE_CUDA_SIM): built on the real
# headers under /usr/local/cuda/include, never linked against the real libraries.
if(NOT RTUNE_CUDA_SIM)
  return()
endif()

find_path(RTUNE_CUDA_STANDIN_INCLUDE cudnn.h HINTS /usr/local/cuda/include REQUIRED)

# Call log, device pointer validator hook and lint channel, shared by both stand-ins.
add_library(rtune_standin_log STATIC kernels/cuda/sim/call_log.cpp)
target_link_libraries(rtune_standin_log PUBLIC rtune_base)

add_library(rtune_cudnn_standin STATIC
  kernels/cuda/sim/standin_cudnn_common.cpp
  kernels/cuda/sim/standin_cudnn_desc.cpp
  kernels/cuda/sim/standin_cudnn_conv2d.cpp
  kernels/cuda/sim/standin_cudnn_batch_norm.cpp
  kernels/cuda/sim/standin_cudnn_pool.cpp)
target_include_directories(rtune_cudnn_standin SYSTEM PUBLIC ${RTUNE_CUDA_STANDIN_INCLUDE})
target_link_libraries(rtune_cudnn_standin PUBLIC rtune_standin_log PRIVATE OpenMP::OpenMP_CXX)

add_library(rtune_cublas_standin STATIC kernels/cuda/sim/standin_cublas.cpp)
target_include_directories(rtune_cublas_standin SYSTEM PUBLIC ${RTUNE_CUDA_STANDIN_INCLUDE})
target_link_libraries(rtune_cublas_standin PUBLIC rtune_standin_log PRIVATE OpenMP::OpenMP_CXX)

# NCCL: ranks are threads or processes of this host meeting in POSIX shared memory; needs the
# simulated runtime (current device, streams, device memory access).
add_library(rtune_nccl_standin STATIC kernels/cuda/sim/standin_nccl.cpp kernels/cuda/sim/nccl_clique.cpp)
target_include_directories(rtune_nccl_standin SYSTEM PUBLIC ${RTUNE_CUDA_STANDIN_INCLUDE})
target_link_libraries(rtune_nccl_standin PUBLIC rtune_standin_log rtune_cuda_sim_exec PRIVATE rt)

rtune_add_test(cuda_standin_cudnn_conv2d SOURCES tests/cuda/test_standin_cudnn_conv2d.cpp LIBS rtune_cudnn_standin)
rtune_add_test(cuda_standin_cudnn_batch_norm SOURCES tests/cuda/test_standin_cudnn_batch_norm.cpp LIBS rtune_cudnn_standin)
rtune_add_test(cuda_standin_cudnn_pool SOURCES tests/cuda/test_standin_cudnn_pool.cpp LIBS rtune_cudnn_standin)
rtune_add_test(cuda_standin_cudnn_desc SOURCES tests/cuda/test_standin_cudnn_desc.cpp LIBS rtune_cudnn_standin)
rtune_add_test(cuda_standin_cublas SOURCES tests/cuda/test_standin_cublas.cpp LIBS rtune_cublas_standin)
rtune_add_test(cuda_standin_nccl SOURCES tests/cuda/test_standin_nccl.cpp LIBS rtune_nccl_standin)
# Holds descriptor statuses against the real libcudnn.so.9, loaded with dlmopen in its own namespace
# (the stand-in defines the same symbols); skips (77) where the real library cannot be loaded.
rtune_add_test(cuda_standin_cudnn_differential SOURCES tests/cuda/test_standin_cudnn_differential.cpp
  LIBS rtune_cudnn_standin ${CMAKE_DL_LIBS})
