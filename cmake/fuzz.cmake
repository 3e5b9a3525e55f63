# tests/fuzz: libFuzzer harnesses for every reader of untrusted bytes (RTUNE_FUZZ=ON, clang).
# tests/fuzz/run.sh builds them in build-fuzz and runs each over its seed corpus tests/fuzz/<name>/.
if(NOT RTUNE_FUZZ)
  return()
endif()

set(RTUNE_FUZZ_HARNESSES "")
# SOURCE defaults to tests/fuzz/fuzz_<name>.cpp; DEFINES are compile definitions of that binary.
function(rtune_add_fuzzer name)
  cmake_parse_arguments(F "" "SOURCE" "LIBS;DEFINES" ${ARGN})
  if(NOT F_SOURCE)
    set(F_SOURCE tests/fuzz/fuzz_${name}.cpp)
  endif()
  add_executable(fuzz_${name} ${F_SOURCE})
  target_link_libraries(fuzz_${name} PRIVATE rtune_base ${F_LIBS})
  target_compile_definitions(fuzz_${name} PRIVATE ${F_DEFINES})
  target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  set(RTUNE_FUZZ_HARNESSES ${RTUNE_FUZZ_HARNESSES} fuzz_${name} PARENT_SCOPE)
endfunction()

# Weight and checkpoint formats.
rtune_add_fuzzer(zip LIBS rtune_io_formats)
rtune_add_fuzzer(pickle LIBS rtune_io_formats)
rtune_add_fuzzer(pth LIBS rtune_io_formats)
rtune_add_fuzzer(safetensors LIBS rtune_io_formats)
rtune_add_fuzzer(checkpoint LIBS rtune_checkpoint)
rtune_add_fuzzer(model_file LIBS rtune_models)
# Image decoders.
rtune_add_fuzzer(jpeg LIBS rtune_data)
rtune_add_fuzzer(jpeg_region LIBS rtune_data)
rtune_add_fuzzer(jpeg_huffman LIBS rtune_data JPEG::JPEG)
rtune_add_fuzzer(stb SOURCE tests/fuzz/fuzz_image.cpp LIBS rtune_data DEFINES "RTUNE_FUZZ_FORMATS=png,bmp,gif,tga,pnm")
rtune_add_fuzzer(webp SOURCE tests/fuzz/fuzz_image.cpp LIBS rtune_data DEFINES "RTUNE_FUZZ_FORMATS=webp")
rtune_add_fuzzer(tiff SOURCE tests/fuzz/fuzz_image.cpp LIBS rtune_data DEFINES "RTUNE_FUZZ_FORMATS=tiff")

add_custom_target(fuzzers DEPENDS ${RTUNE_FUZZ_HARNESSES})

# Regenerates the gen_* seeds of the weight-format corpora: fuzz_make_seeds tests/fuzz
add_executable(fuzz_make_seeds tests/fuzz/make_seeds.cpp)
target_link_libraries(fuzz_make_seeds PRIVATE rtune_models rtune_io_formats)
