# tests/fuzz: libFuzzer harnesses for every reader of untrusted bytes. With RTUNE_FUZZ=ON (clang) each
# is a libFuzzer binary fuzz_<name>, which tests/fuzz/run.sh runs over its seeds; in the normal build
# each is a ctest, fuzz_replay_<name>, that runs the harness once on every committed seed and
# regression input (tests/fuzz/replay_main.cpp).

# SOURCE defaults to tests/fuzz/fuzz_<name>.cpp; DEFINES are compile definitions of that binary; SEEDS
# are the folders under tests/fuzz the replay reads (default: <name>).
function(rtune_add_fuzzer name)
  cmake_parse_arguments(F "" "SOURCE" "LIBS;DEFINES;SEEDS" ${ARGN})
  if(NOT F_SOURCE)
    set(F_SOURCE tests/fuzz/fuzz_${name}.cpp)
  endif()
  if(NOT F_SEEDS)
    set(F_SEEDS ${name})
  endif()
  if(RTUNE_FUZZ)
    set(target fuzz_${name})
    add_executable(${target} ${F_SOURCE})
    target_link_options(${target} PRIVATE -fsanitize=fuzzer)
    set_property(GLOBAL APPEND PROPERTY RTUNE_FUZZ_HARNESSES ${target})
  else()
    set(target test_fuzz_replay_${name})
    add_executable(${target} ${F_SOURCE} tests/fuzz/replay_main.cpp)
    list(TRANSFORM F_SEEDS PREPEND ${PROJECT_SOURCE_DIR}/tests/fuzz/)
    add_test(NAME fuzz_replay_${name} COMMAND ${target} ${F_SEEDS})
  endif()
  target_link_libraries(${target} PRIVATE rtune_base ${F_LIBS})
  target_compile_definitions(${target} PRIVATE ${F_DEFINES})
endfunction()

# stb_image 2.27 calls memcpy(NULL, p, 0) for an empty PNG IDAT chunk before any data (stbi__getn):
# undefined in the letter of C, harmless in fact, and inside the library, where rtune cannot fix it
# (found by fuzz_stb, input kept). Every other sanitizer check stays on for that file.
if(RTUNE_FUZZ OR RTUNE_SANITIZE)
  set_property(SOURCE io/image/stb_backend.cpp APPEND PROPERTY COMPILE_OPTIONS -fno-sanitize=nonnull-attribute)
endif()

# Weight and checkpoint formats.
rtune_add_fuzzer(zip LIBS rtune_io_formats)
rtune_add_fuzzer(pickle LIBS rtune_io_formats)
rtune_add_fuzzer(pth LIBS rtune_io_formats)
rtune_add_fuzzer(safetensors LIBS rtune_io_formats)
rtune_add_fuzzer(checkpoint LIBS rtune_io_formats)
rtune_add_fuzzer(model_file LIBS rtune_finetune)
# Image decoders. The JPEG harnesses share the JPEG seeds (tests/fuzz/run.sh does the same).
rtune_add_fuzzer(jpeg LIBS rtune_data)
rtune_add_fuzzer(jpeg_region LIBS rtune_data SEEDS jpeg)
rtune_add_fuzzer(jpeg_huffman LIBS rtune_data JPEG::JPEG SEEDS jpeg jpeg_huffman)
rtune_add_fuzzer(stb SOURCE tests/fuzz/fuzz_image.cpp LIBS rtune_data DEFINES "RTUNE_FUZZ_FORMATS=png,bmp,gif,tga,pnm")
rtune_add_fuzzer(webp SOURCE tests/fuzz/fuzz_image.cpp LIBS rtune_data DEFINES "RTUNE_FUZZ_FORMATS=webp")
rtune_add_fuzzer(tiff SOURCE tests/fuzz/fuzz_image.cpp LIBS rtune_data DEFINES "RTUNE_FUZZ_FORMATS=tiff")

if(RTUNE_FUZZ)
  get_property(_harnesses GLOBAL PROPERTY RTUNE_FUZZ_HARNESSES)
  add_custom_target(fuzzers DEPENDS ${_harnesses})
  # Regenerates the gen_* seeds of the weight-format corpora: fuzz_make_seeds tests/fuzz
  add_executable(fuzz_make_seeds tests/fuzz/make_seeds.cpp)
  target_link_libraries(fuzz_make_seeds PRIVATE rtune_finetune)
endif()
