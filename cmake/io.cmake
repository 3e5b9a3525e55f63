# io/formats: safetensors (native), the restricted PyTorch .pth reader (zip + legacy pickle) and the
# atomic training checkpoint.
add_library(rtune_io_formats STATIC
  io/formats/stored_mapping.cpp
  io/formats/stored_tensor.cpp
  io/formats/safetensors.cpp
  io/formats/safetensors_write.cpp
  io/formats/zip_reader.cpp
  io/formats/pickle_vm.cpp
  io/formats/pth.cpp
  io/formats/checkpoint.cpp
)
target_link_libraries(rtune_io_formats PUBLIC rtune_core nlohmann_json::nlohmann_json fmt::fmt)

rtune_add_test(io_safetensors SOURCES tests/io/test_safetensors.cpp LIBS rtune_io_formats)
rtune_add_test(io_pth SOURCES tests/io/test_pth.cpp tests/io/test_pth_hostile.cpp LIBS rtune_io_formats)
rtune_add_test(io_fuzz SOURCES tests/io/test_io_fuzz.cpp LIBS rtune_io_formats)
rtune_add_test(io_printable SOURCES tests/io/test_printable.cpp LIBS rtune_base)
