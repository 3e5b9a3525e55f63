# Benchmarks: print figures, never assert them (bench/RESULTS.md records runs).
add_executable(bench_conv2d_cpu bench/conv2d_cpu.cpp)
target_link_libraries(bench_conv2d_cpu PRIVATE rtune_core)

# Data pipeline: decode / train transforms / cached img/s (bench/pytorch_loader.py is its PyTorch twin).
add_executable(bench_loader bench/loader_bench.cpp)
target_link_libraries(bench_loader PRIVATE rtune_data)
