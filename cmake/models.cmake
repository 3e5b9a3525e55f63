# models/ (ResNet family, weight loading) and engine/nn (modules).
add_library(rtune_models STATIC engine/nn/module.cpp engine/nn/autocast.cpp models/resnet.cpp models/weights.cpp models/model_file.cpp)
target_link_libraries(rtune_models PUBLIC rtune_core rtune_io_formats)
rtune_add_test(models_resnet_parity SOURCES tests/models/test_resnet_parity.cpp LIBS rtune_models rtune_test_util)

# engine/optim: optimizers over parameters (the per-element rules are rtune_optim_math).
add_library(rtune_optim STATIC engine/optim/optimizer.cpp)
target_link_libraries(rtune_optim PUBLIC rtune_core rtune_optim_math nlohmann_json::nlohmann_json)
rtune_add_test(train_three_steps SOURCES tests/train/test_three_steps.cpp LIBS rtune_models rtune_optim rtune_test_util)
