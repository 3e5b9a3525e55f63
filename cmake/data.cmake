# io/image (decode), io/transforms (torchvision-equal transforms), io/data (datasets, loader).
find_path(TURBOJPEG_INCLUDE_DIR turbojpeg.h REQUIRED)
find_library(TURBOJPEG_LIBRARY turbojpeg REQUIRED)
# The libjpeg API of the same libjpeg-turbo, for partial (cropped) decoding: io/image/jpeg_region.cpp.
find_package(JPEG REQUIRED)
find_path(STB_INCLUDE_DIR stb/stb_image.h REQUIRED)
# libwebp with its demux library (WebPAnimDecoder, what Pillow decodes WebP with): io/image/webp.cpp.
find_path(WEBP_INCLUDE_DIR webp/demux.h REQUIRED)
find_library(WEBP_LIBRARY webp REQUIRED)
find_library(WEBPDEMUX_LIBRARY webpdemux REQUIRED)
find_package(TIFF 4.5 REQUIRED)
find_path(RTUNE_STB_WRITE_INCLUDE stb/stb_image_write.h REQUIRED)  # io/image/png_write.cpp  # 4.5: per-file error handlers (TIFFOpenOptions), io/image/tiff.cpp

add_library(rtune_data STATIC
  io/image/decode.cpp
  io/image/file_read.cpp
  io/image/jpeg.cpp
  io/image/jpeg_region.cpp
  io/image/jpeg_cmyk.cpp
  io/image/jpeg_huffman.cpp
  io/image/stb_backend.cpp
  io/image/stb_palette.cpp
  io/image/webp.cpp
  io/image/tiff.cpp
  io/transforms/resize.cpp
  io/transforms/resample_passes.cpp
  io/transforms/geometry.cpp
  io/transforms/color.cpp
  io/transforms/normalize.cpp
  io/transforms/random.cpp
  io/transforms/pipeline.cpp
  io/data/dataset.cpp
  io/data/loader.cpp
  io/data/cache.cpp
  io/data/byte_arena.cpp
  io/image/png_write.cpp
  io/data/walk.cpp
)
target_include_directories(rtune_data PRIVATE ${TURBOJPEG_INCLUDE_DIR} ${STB_INCLUDE_DIR} ${WEBP_INCLUDE_DIR}
                           ${RTUNE_STB_WRITE_INCLUDE})
target_link_libraries(rtune_data PUBLIC rtune_base Threads::Threads
                      PRIVATE ${TURBOJPEG_LIBRARY} JPEG::JPEG ${WEBPDEMUX_LIBRARY} ${WEBP_LIBRARY} TIFF::TIFF)
# PIL's float arithmetic (blend, HSV, bilinear rotate) is reproduced operation by operation: no FMA
# contraction, even under RTUNE_NATIVE.
target_compile_options(rtune_data PRIVATE -ffp-contract=off -Wall -Wextra)
# Lets GCC vectorise the hue kernel's selects; changes no value (only whether FP exceptions may be raised).
set_source_files_properties(io/transforms/color.cpp PROPERTIES COMPILE_OPTIONS -fno-trapping-math)

# The tests read their references through the safetensors reader of cmake/io.cmake.
rtune_add_test(data_decode SOURCES tests/data/test_decode.cpp LIBS rtune_data rtune_io_formats)
rtune_add_test(data_decode_fuzz_findings SOURCES tests/data/test_decode_fuzz_findings.cpp LIBS rtune_data)
rtune_add_test(data_jpeg_sampling SOURCES tests/data/test_jpeg_sampling.cpp LIBS rtune_data rtune_io_formats JPEG::JPEG)
rtune_add_test(data_jpeg_huffman SOURCES tests/data/test_jpeg_huffman.cpp LIBS rtune_data JPEG::JPEG)
rtune_add_test(data_transforms SOURCES tests/data/test_transforms.cpp LIBS rtune_data rtune_io_formats)
rtune_add_test(data_resample_passes SOURCES tests/data/test_resample_passes.cpp LIBS rtune_data rtune_io_formats)
rtune_add_test(data_transforms_parity SOURCES tests/data/test_transforms_parity.cpp LIBS rtune_data rtune_io_formats)
rtune_add_test(data_small_rrc SOURCES tests/data/test_small_rrc.cpp LIBS rtune_data rtune_io_formats)
rtune_add_test(data_color_exact SOURCES tests/data/test_color_exact.cpp LIBS rtune_data rtune_io_formats)
target_compile_options(test_data_color_exact PRIVATE -ffp-contract=off)  # its Pillow oracle, as Pillow's C
rtune_add_test(data_dataset SOURCES tests/data/test_dataset.cpp LIBS rtune_data rtune_io_formats)
rtune_add_test(data_loader SOURCES tests/data/test_loader.cpp LIBS rtune_data rtune_io_formats)
rtune_add_test(data_cache SOURCES tests/data/test_cache.cpp LIBS rtune_data rtune_io_formats)
