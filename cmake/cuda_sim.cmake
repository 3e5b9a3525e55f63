# The simulated CUDA device (RTUNE_CUDA_SIM): kernels/cuda/*.cu run as host C++ on fibers, the
# runtime layer on host memory. Under RTUNE_CUDA: the real runtime layer and a compile-only check
# that launch.cuh and a kernel build with nvcc for sm_90.

# Compiles .cu files as host C++ for the simulator (call on every sim target's .cu sources).
function(rtune_sim_cu_sources)
  set_source_files_properties(${ARGN} PROPERTIES LANGUAGE CXX)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    set_source_files_properties(${ARGN} PROPERTIES COMPILE_OPTIONS "-xc++")
  endif()
endfunction()

if(RTUNE_CUDA_SIM)
  find_package(Boost REQUIRED COMPONENTS context)
  find_path(RTUNE_SIM_CUDA_INCLUDE vector_types.h HINTS /usr/local/cuda/include)
  add_library(rtune_cuda_sim_exec STATIC
    kernels/cuda/sim/execution.cpp
    kernels/cuda/sim/device_memory.cpp
    kernels/cuda/sim/runtime_sim.cpp
    kernels/cuda/sim/fiber_switch.cpp)
  target_link_libraries(rtune_cuda_sim_exec PUBLIC rtune_base Boost::context Threads::Threads)
  target_compile_definitions(rtune_cuda_sim_exec PUBLIC RTUNE_CUDA_SIM=1)
  if(RTUNE_SIM_CUDA_INCLUDE)
    # Use CUDA's own dim3/uint3 so a kernel source may include cudnn.h next to launch.cuh.
    target_include_directories(rtune_cuda_sim_exec SYSTEM PUBLIC ${RTUNE_SIM_CUDA_INCLUDE})
    target_compile_definitions(rtune_cuda_sim_exec PUBLIC RTUNE_SIM_CUDA_HEADERS=1)
  endif()

  set(_sim_test_kernels tests/cuda/kernels_for_tests/sim_test_kernels.cu)
  rtune_sim_cu_sources(${_sim_test_kernels})
  add_library(rtune_cuda_sim_test_kernels STATIC ${_sim_test_kernels})
  target_link_libraries(rtune_cuda_sim_test_kernels PUBLIC rtune_cuda_sim_exec)

  rtune_add_test(cuda_sim_exec SOURCES tests/cuda/test_sim_exec.cpp LIBS rtune_cuda_sim_test_kernels)
  rtune_add_test(cuda_sim_warp SOURCES tests/cuda/test_sim_warp.cpp LIBS rtune_cuda_sim_test_kernels)
  rtune_add_test(cuda_sim_runtime SOURCES tests/cuda/test_sim_runtime.cpp LIBS rtune_cuda_sim_test_kernels)
endif()

if(RTUNE_CUDA)
  # CMake 3.25 does not know nvcc's C++20 flag (the root asks for CUDA 20); nvcc 12+ accepts it.
  if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION AND CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 12.0)
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
  endif()
  add_library(rtune_cuda_runtime_real STATIC kernels/cuda/runtime_cuda.cpp)
  target_link_libraries(rtune_cuda_runtime_real PUBLIC rtune_base CUDA::cudart)
  # fmt 9 turns FMT_CONSTEXPR off under __NVCC__, which breaks its own C++20 code; g++ TUs have it
  # on, so turning it on for nvcc also keeps both compilers' view of fmt identical.
  target_compile_definitions(rtune_cuda_runtime_real PUBLIC $<$<COMPILE_LANGUAGE:CUDA>:FMT_USE_CONSTEXPR=1>)

  # Compile-only: the test kernels through launch.cuh with nvcc for sm_90 (no GPU needed to build).
  add_library(rtune_cuda_compile_check STATIC tests/cuda/kernels_for_tests/sim_test_kernels.cu)
  set_target_properties(rtune_cuda_compile_check PROPERTIES CUDA_ARCHITECTURES "90")
  target_link_libraries(rtune_cuda_compile_check PUBLIC rtune_cuda_runtime_real)
  # The same kernels on the GPU, checked against the results the simulator tests expect (77 = no GPU).
  rtune_add_test(cuda_sim_gpu_parity SOURCES tests/cuda/test_sim_gpu_parity.cpp LIBS rtune_cuda_compile_check)
endif()
