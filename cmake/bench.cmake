# Benchmarks: print figures, never assert them (bench/RESULTS.md records runs).

# Data pipeline: decode / train transforms / cached img/s (bench/pytorch_loader.py is its PyTorch twin).
add_executable(bench_loader bench/loader_bench.cpp)
target_link_libraries(bench_loader PRIVATE rtune_finetune)

# The Pillow-exact RandomResizedCrop resample alone (bench/RESULTS.md, "Data pipeline").
add_executable(bench_resize bench/resize_bench.cpp)
target_link_libraries(bench_resize PRIVATE rtune_data)

# Whole-image JPEG decoding with libjpeg-turbo's Huffman decoder and with rtune's (io/image/jpeg_huffman.cpp).
add_executable(bench_jpeg bench/jpeg_bench.cpp)
target_link_libraries(bench_jpeg PRIVATE rtune_data JPEG::JPEG)
