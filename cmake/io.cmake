# io/ weight formats: safetensors (native) and the restricted PyTorch .pth reader (zip + legacy pickle).
add_library(rtune_io_formats STATIC
  io/stored_mapping.cpp
  io/stored_tensor.cpp
  io/safetensors.cpp
  io/safetensors_write.cpp
  io/zip_reader.cpp
  io/pickle_vm.cpp
  io/pth.cpp
)
target_link_libraries(rtune_io_formats PUBLIC rtune_base nlohmann_json::nlohmann_json fmt::fmt)

rtune_add_test(io_safetensors SOURCES tests/io/test_safetensors.cpp LIBS rtune_io_formats)
rtune_add_test(io_pth SOURCES tests/io/test_pth.cpp tests/io/test_pth_hostile.cpp LIBS rtune_io_formats)
rtune_add_test(io_fuzz SOURCES tests/io/test_io_fuzz.cpp LIBS rtune_io_formats)
rtune_add_test(io_printable SOURCES tests/io/test_printable.cpp LIBS rtune_base)
