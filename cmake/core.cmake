# engine/ + kernels/ (façade and CPU backend): the tensor, autograd and op core.
add_library(rtune_core STATIC
  engine/storage.cpp engine/tensor.cpp engine/autograd.cpp engine/functional.cpp engine/rng.cpp
  kernels/dispatch.cpp kernels/op_counts.cpp
  kernels/cpu/elementwise.cpp kernels/cpu/images.cpp kernels/cpu/conv2d.cpp kernels/cpu/batchnorm.cpp
  kernels/cpu/pool.cpp kernels/cpu/linear.cpp kernels/cpu/softmax.cpp kernels/cpu/optim.cpp)
target_link_libraries(rtune_core PUBLIC rtune_base Eigen3::Eigen OpenMP::OpenMP_CXX)
# Eigen's GEMM must vectorise: the CPU path is our fallback trainer and the numerical oracle.
target_compile_options(rtune_core PRIVATE $<$<CONFIG:Release>:-O3>)

add_library(rtune_test_util STATIC tests/core/test_util.cpp)
target_link_libraries(rtune_test_util PUBLIC rtune_core rtune_doctest_main)
rtune_add_test(core_tensor SOURCES tests/core/test_tensor.cpp LIBS rtune_test_util)
rtune_add_test(core_autograd SOURCES tests/core/test_autograd.cpp LIBS rtune_test_util)
rtune_add_test(core_ops_forward SOURCES tests/core/test_ops_forward.cpp LIBS rtune_test_util nlohmann_json::nlohmann_json)
rtune_add_test(core_gradcheck SOURCES tests/core/test_gradcheck_ops.cpp LIBS rtune_test_util)
rtune_add_test(core_normalize_images SOURCES tests/core/test_normalize_images.cpp LIBS rtune_test_util)
