# models/: the ResNet family (building blocks, torchvision names). No file reading: weight files are
# finetune/ (cmake/finetune.cmake).
add_library(rtune_models STATIC models/resnet.cpp)
target_link_libraries(rtune_models PUBLIC rtune_core)
