# engine/train (the fine-tuning loop), io/checkpoint (atomic training checkpoints) and io/report
# (metrics logs, the HTML run report): library rtune_train, used by tools/ (train/eval/predict/demo).
find_path(RTUNE_STB_WRITE_INCLUDE stb/stb_image_write.h REQUIRED)
file(GLOB RTUNE_TRAIN_SOURCES CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/engine/train/*.cpp
  ${PROJECT_SOURCE_DIR}/io/report/*.cpp)
# Its own library so that the checkpoint fuzzer (cmake/fuzz.cmake) links no more than it reads.
add_library(rtune_checkpoint STATIC io/checkpoint.cpp)
target_link_libraries(rtune_checkpoint PUBLIC rtune_core rtune_io_formats nlohmann_json::nlohmann_json)
add_library(rtune_train STATIC ${RTUNE_TRAIN_SOURCES})
target_include_directories(rtune_train PRIVATE ${RTUNE_STB_WRITE_INCLUDE})
target_link_libraries(rtune_train PUBLIC rtune_models rtune_optim rtune_data rtune_io_formats rtune_checkpoint nlohmann_json::nlohmann_json
  PRIVATE OpenMP::OpenMP_CXX)
# Keep a*b+c as two roundings: images_to_tensor must equal torchvision's ToTensor + Normalize exactly.
target_compile_options(rtune_train PRIVATE -ffp-contract=off -Wall -Wextra)

rtune_add_test(train_trainer SOURCES tests/train/test_trainer.cpp tests/train/test_trainer_parts.cpp
  LIBS rtune_train rtune_test_util)
rtune_add_test(train_checkpoint SOURCES tests/train/test_checkpoint.cpp LIBS rtune_train rtune_test_util)
rtune_add_test(train_report SOURCES tests/train/test_trainer_report.cpp LIBS rtune_train rtune_test_util)
# libgomp's default spin-waiting between parallel regions starves the loader threads (and everything
# else) on a busy 2-core machine: measured 10x slower epochs here. Tests run with passive waiting.
set_tests_properties(train_trainer train_checkpoint train_report PROPERTIES ENVIRONMENT OMP_WAIT_POLICY=passive)
