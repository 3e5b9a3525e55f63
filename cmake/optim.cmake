# engine/optim (update rules, clipping) + engine/sched (LR schedulers): PyTorch-exact optimizer math on
# raw spans, independent of the Tensor type so the rules can be reused by fused CUDA kernels.
add_library(rtune_optim_math STATIC
  engine/optim/update_rules.cpp
  engine/optim/clip.cpp
  engine/sched/scheduler.cpp
  engine/sched/epoch_schedulers.cpp
  engine/sched/onecycle.cpp
  engine/sched/plateau.cpp
  engine/sched/spec.cpp)
target_link_libraries(rtune_optim_math PUBLIC rtune_base nlohmann_json::nlohmann_json PRIVATE OpenMP::OpenMP_CXX)

rtune_add_test(optim_rules SOURCES tests/optim/test_optim_rules.cpp LIBS rtune_optim_math)
rtune_add_test(optim_sched SOURCES tests/optim/test_sched.cpp LIBS rtune_optim_math)
rtune_add_test(optim_clip SOURCES tests/optim/test_clip.cpp LIBS rtune_optim_math)

# The same rules inside CUDA kernels (real GPU build only; skips at run time without a device).
if(RTUNE_CUDA)
  rtune_add_test(optim_rules_cuda SOURCES tests/optim/test_optim_rules_cuda.cpp tests/optim/optim_rules_kernels.cu
                 LIBS rtune_optim_math CUDA::cudart)
endif()
