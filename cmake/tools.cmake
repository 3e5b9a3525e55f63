# tools/: the one `rtune` binary. Each subcommand lives in tools/cmd_<name>.cpp (see tools/commands.h):
# it parses its flags, calls finetune/ and prints.
find_package(CLI11 REQUIRED)
file(GLOB RTUNE_TOOL_COMMANDS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tools/cmd_*.cpp)
add_executable(rtune tools/rtune.cpp ${RTUNE_TOOL_COMMANDS})
target_link_libraries(rtune PRIVATE rtune_finetune CLI11::CLI11)

# --- convert / summary / the rtune model file
rtune_add_test(tools_model_file SOURCES tests/tools/test_model_file.cpp LIBS rtune_finetune rtune_test_util)
rtune_add_test(tools_convert SOURCES tests/tools/test_convert.cpp LIBS rtune_finetune rtune_test_util)
rtune_add_test(tools_summary SOURCES tests/tools/test_summary.cpp LIBS rtune_finetune rtune_test_util)
foreach(t tools_convert tools_summary)
  target_compile_definitions(test_${t} PRIVATE RTUNE_BIN="$<TARGET_FILE:rtune>")
  add_dependencies(test_${t} rtune)
endforeach()

# --- train / eval / predict / demo: end-to-end tests through the binary (tests/e2e).
if(TARGET rtune_finetune)
  rtune_add_test(e2e_cli SOURCES tests/e2e/test_cli.cpp tests/e2e/test_cli_hostile.cpp tests/e2e/test_cli_kill.cpp LIBS rtune_finetune rtune_test_util)
  target_compile_definitions(test_e2e_cli PRIVATE RTUNE_BIN="$<TARGET_FILE:rtune>")
  if(RTUNE_CUDA OR RTUNE_CUDA_SIM)
    target_compile_definitions(test_e2e_cli PRIVATE RTUNE_TEST_HAS_CUDA=1)
  endif()
  if(RTUNE_CUDA_SIM)  # the simulated device's memory cap (RTUNE_SIM_MEMORY_MB) makes out-of-memory testable
    target_compile_definitions(test_e2e_cli PRIVATE RTUNE_TEST_CUDA_SIM=1)
  endif()
  add_dependencies(test_e2e_cli rtune)
  set_tests_properties(e2e_cli PROPERTIES ENVIRONMENT OMP_WAIT_POLICY=passive)  # see cmake/finetune.cmake

  # Every `rtune` command of README.md's sh blocks, run as written on generated data (reads README.md).
  rtune_add_test(e2e_readme SOURCES tests/e2e/test_readme_commands.cpp LIBS rtune_finetune rtune_test_util JPEG::JPEG)
  target_compile_definitions(test_e2e_readme PRIVATE RTUNE_BIN="$<TARGET_FILE:rtune>")
  if(RTUNE_CUDA OR RTUNE_CUDA_SIM)
    target_compile_definitions(test_e2e_readme PRIVATE RTUNE_TEST_HAS_CUDA=1)
  endif()
  if(RTUNE_CUDA_SIM)
    target_compile_definitions(test_e2e_readme PRIVATE RTUNE_TEST_CUDA_SIM=1)
  endif()
  add_dependencies(test_e2e_readme rtune)
  set_tests_properties(e2e_readme PROPERTIES ENVIRONMENT OMP_WAIT_POLICY=passive)
  # Data-parallel runs under mpirun (issue 20): two CPU ranks; skips visibly without MPI.
  rtune_add_test(e2e_mpi SOURCES tests/e2e/test_mpi.cpp LIBS rtune_finetune rtune_test_util)
  target_compile_definitions(test_e2e_mpi PRIVATE RTUNE_BIN="$<TARGET_FILE:rtune>")
  add_dependencies(test_e2e_mpi rtune)
  set_tests_properties(e2e_mpi PROPERTIES ENVIRONMENT OMP_WAIT_POLICY=passive TIMEOUT 900)
  # Launched by Slurm's srun (tests/slurm/srun_smoke.sh): skips visibly where no Slurm cluster answers.
  add_test(NAME e2e_srun COMMAND bash ${PROJECT_SOURCE_DIR}/tests/slurm/srun_smoke.sh $<TARGET_FILE:rtune>)
  set_tests_properties(e2e_srun PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600 ENVIRONMENT OMP_NUM_THREADS=1)
  # The same on GPU ranks over NCCL: two simulated GPUs in the sim build; two real GPUs or a visible skip.
  if(RTUNE_CUDA OR RTUNE_CUDA_SIM)
    rtune_add_test(e2e_mpi_gpu SOURCES tests/e2e/test_mpi_gpu.cpp LIBS rtune_finetune rtune_test_util)
    target_compile_definitions(test_e2e_mpi_gpu PRIVATE RTUNE_BIN="$<TARGET_FILE:rtune>")
    add_dependencies(test_e2e_mpi_gpu rtune)
    set_tests_properties(e2e_mpi_gpu PROPERTIES ENVIRONMENT OMP_WAIT_POLICY=passive TIMEOUT 900)
  endif()
endif()
