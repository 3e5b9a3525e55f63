# finetune/: the application. The training loop, batches, freezing, parameter groups, metrics, weight
# and model files, the run folder and its report, inference, convert, summary, demo, benchmarks. The
# `rtune` command (cmake/tools.cmake) only parses flags and calls it.
file(GLOB RTUNE_FINETUNE_SOURCES CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/finetune/*.cpp
  ${PROJECT_SOURCE_DIR}/finetune/report/*.cpp)
add_library(rtune_finetune STATIC ${RTUNE_FINETUNE_SOURCES})
target_link_libraries(rtune_finetune PUBLIC rtune_models rtune_data rtune_io_formats rtune_core nlohmann_json::nlohmann_json
  PRIVATE OpenMP::OpenMP_CXX)
# Keep a*b+c as two roundings: images_to_tensor must equal torchvision's ToTensor + Normalize exactly.
target_compile_options(rtune_finetune PRIVATE -ffp-contract=off -Wall -Wextra)

rtune_add_test(models_resnet_parity SOURCES tests/models/test_resnet_parity.cpp LIBS rtune_finetune rtune_test_util)
rtune_add_test(models_bn_folding SOURCES tests/models/test_bn_folding.cpp LIBS rtune_finetune rtune_test_util)
rtune_add_test(train_three_steps SOURCES tests/train/test_three_steps.cpp LIBS rtune_finetune rtune_test_util)
# PyTorch DDP parity of two MPI ranks (issue 20): the binary is started by mpirun, 2 ranks, bounded.
if(MPI_C_FOUND AND MPIEXEC_EXECUTABLE)
  add_executable(test_train_ddp_parity tests/train/test_ddp_parity.cpp)
  target_link_libraries(test_train_ddp_parity PRIVATE rtune_doctest_main rtune_finetune rtune_test_util)
  add_test(NAME train_ddp_parity COMMAND timeout -s KILL 300 ${MPIEXEC_EXECUTABLE} --allow-run-as-root --oversubscribe
           --bind-to none -np 2 $<TARGET_FILE:test_train_ddp_parity>)
  set_tests_properties(train_ddp_parity PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=1;OMP_WAIT_POLICY=passive")
endif()

rtune_add_test(train_grad_buckets SOURCES tests/train/test_grad_buckets.cpp LIBS rtune_finetune rtune_test_util)
rtune_add_test(train_rank_device SOURCES tests/train/test_rank_device.cpp LIBS rtune_finetune rtune_test_util)
rtune_add_test(train_trainer SOURCES tests/train/test_trainer.cpp tests/train/test_trainer_parts.cpp
  LIBS rtune_finetune rtune_test_util)
rtune_add_test(train_feature_cache SOURCES tests/train/test_feature_cache.cpp LIBS rtune_finetune rtune_test_util)
rtune_add_test(train_checkpoint SOURCES tests/train/test_checkpoint.cpp LIBS rtune_finetune rtune_test_util)
rtune_add_test(train_report SOURCES tests/train/test_trainer_report.cpp LIBS rtune_finetune rtune_test_util)
# libgomp's default spin-waiting between parallel regions starves the loader threads (and everything
# else) on a busy 2-core machine: measured 10x slower epochs here. Tests run with passive waiting.
set_tests_properties(train_trainer train_feature_cache train_checkpoint train_report PROPERTIES ENVIRONMENT OMP_WAIT_POLICY=passive)

# Several steps of the training loop on the CUDA device against the CPU, both against float64.
if(RTUNE_CUDA OR RTUNE_CUDA_SIM)
  rtune_add_test(cuda_trajectory SOURCES tests/cuda/test_cuda_trajectory.cpp LIBS rtune_cuda_test_util rtune_finetune)
  rtune_add_test(cuda_feature_cache SOURCES tests/cuda/test_cuda_feature_cache.cpp LIBS rtune_cuda_test_util rtune_finetune)
  set_tests_properties(cuda_trajectory cuda_feature_cache PROPERTIES ENVIRONMENT OMP_WAIT_POLICY=passive)
endif()
