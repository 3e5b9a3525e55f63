# The core layer, engine/ + kernels/ (docs/ARCHITECTURE.md): tensors, autograd, modules, optimizers,
# schedulers, and the op façade with its CPU backend (the CUDA backend joins in cmake/cuda.cmake).
# One target: a Tensor method dispatches through kernels/ops.h and every kernel takes Tensors.
add_library(rtune_core STATIC
  engine/storage.cpp engine/tensor.cpp engine/autograd.cpp engine/functional.cpp engine/random_tensor.cpp
  engine/nn/module.cpp engine/nn/autocast.cpp
  engine/optim/optimizer.cpp
  engine/sched/scheduler.cpp engine/sched/epoch_schedulers.cpp engine/sched/onecycle.cpp engine/sched/plateau.cpp
  engine/sched/spec.cpp
  kernels/dispatch.cpp kernels/op_counts.cpp kernels/cpu/backend.cpp
  kernels/cpu/elementwise.cpp kernels/cpu/images.cpp kernels/cpu/conv2d.cpp kernels/cpu/batch_norm.cpp
  kernels/cpu/batch_norm_nhwc.cpp kernels/cpu/pool.cpp kernels/cpu/linear.cpp kernels/cpu/softmax.cpp kernels/cpu/optim.cpp)
target_link_libraries(rtune_core PUBLIC rtune_base Eigen3::Eigen OpenMP::OpenMP_CXX nlohmann_json::nlohmann_json)
# Eigen's GEMM must vectorise: the CPU path is our fallback trainer and the numerical oracle.
target_compile_options(rtune_core PRIVATE $<$<CONFIG:Release>:-O3>)
# oneDNN (Debian's libdnnl-dev) computes the float32 convolutions when found; without it (or with
# -DRTUNE_ONEDNN=OFF) the build is Eigen-only and --cpu-backend onednn says so (kernels/cpu/backend.h).
# Not in the fuzz build: clang's libomp there and Debian oneDNN's libgomp would share one process.
option(RTUNE_ONEDNN "Use oneDNN for the CPU's float32 convolutions when it is installed" ON)
if(RTUNE_ONEDNN AND NOT RTUNE_FUZZ)
  find_package(dnnl CONFIG QUIET)
endif()
if(dnnl_FOUND)
  target_sources(rtune_core PRIVATE kernels/cpu/onednn/engine.cpp kernels/cpu/onednn/conv2d_onednn.cpp)
  target_link_libraries(rtune_core PRIVATE DNNL::dnnl)
  target_compile_definitions(rtune_core PRIVATE RTUNE_HAVE_ONEDNN=1)
endif()
if(dnnl_FOUND)
  message(STATUS "rtune: oneDNN ${dnnl_VERSION} computes the CPU's float32 convolutions (--cpu-backend)")
else()
  message(STATUS "rtune: no oneDNN: the CPU backend is Eigen only")
endif()

# Open MPI (Debian's libopenmpi-dev) carries data-parallel runs across ranks (kernels/dist/comm.h);
# without it a launcher's several ranks are refused. Not in the fuzz build (nothing there communicates).
option(RTUNE_MPI "Use MPI for data-parallel training across ranks when it is installed" ON)
target_sources(rtune_core PRIVATE kernels/dist/comm.cpp kernels/dist/device_comm.cpp)
if(RTUNE_MPI AND NOT RTUNE_FUZZ)
  find_package(MPI COMPONENTS C QUIET)
endif()
if(MPI_C_FOUND)
  target_sources(rtune_core PRIVATE kernels/dist/mpi_comm.cpp)
  target_link_libraries(rtune_core PRIVATE MPI::MPI_C)
  target_compile_definitions(rtune_core PRIVATE RTUNE_HAVE_MPI=1)
  message(STATUS "rtune: MPI ${MPI_C_VERSION} for data-parallel runs (mpirun -np N rtune train)")
else()
  target_compile_definitions(rtune_core PRIVATE RTUNE_HAVE_MPI=0)
  message(STATUS "rtune: no MPI: one rank per run")
endif()

add_library(rtune_test_util STATIC tests/core/test_util.cpp)
target_link_libraries(rtune_test_util PUBLIC rtune_core rtune_doctest_main)
rtune_add_test(core_tensor SOURCES tests/core/test_tensor.cpp LIBS rtune_test_util)
rtune_add_test(core_autograd SOURCES tests/core/test_autograd.cpp LIBS rtune_test_util)

# One test per op, named for the kernels' stem (tests/ops/test_<stem>.cpp: ops_conv2d, ...), plus the
# cases that span several ops (views, residual_block): forward values, float64 gradient checks and, with
# a CUDA backend, CPU-vs-CUDA parity (RTUNE_TEST_HAS_CUDA). Those parity cases skip one by one where a
# real-CUDA build finds no GPU, so the CPU cases still run. optim and device_memory hold CUDA cases only.
set(RTUNE_OPS_TESTS conv2d batch_norm pool linear softmax elementwise images views residual_block)
if(RTUNE_CUDA OR RTUNE_CUDA_SIM)
  list(APPEND RTUNE_OPS_TESTS optim device_memory)
endif()
foreach(op ${RTUNE_OPS_TESTS})
  rtune_add_test(ops_${op} SOURCES tests/ops/test_${op}.cpp LIBS rtune_test_util)
  if(RTUNE_CUDA OR RTUNE_CUDA_SIM)
    # rtune_cuda_test_util comes from cmake/cuda.cmake; CI runs the CUDA parity under ASan + UBSan too.
    target_link_libraries(test_ops_${op} PRIVATE rtune_cuda_test_util)
    target_compile_definitions(test_ops_${op} PRIVATE RTUNE_TEST_HAS_CUDA)
    set_tests_properties(ops_${op} PROPERTIES LABELS asan)
  endif()
endforeach()

# The optimizers' per-element rules (kernels/update_rules.h), clipping and the LR schedulers.
rtune_add_test(optim_rules SOURCES tests/optim/test_optim_rules.cpp LIBS rtune_core)
rtune_add_test(optim_sched SOURCES tests/optim/test_sched.cpp LIBS rtune_core)
rtune_add_test(optim_clip SOURCES tests/optim/test_clip.cpp LIBS rtune_core)
# The same rules inside CUDA kernels (real GPU build only; skips at run time without a device).
if(RTUNE_CUDA)
  rtune_add_test(optim_rules_cuda SOURCES tests/optim/test_optim_rules_cuda.cpp tests/optim/optim_rules_kernels.cu
                 LIBS rtune_core CUDA::cudart)
endif()
