// The one header a kernel source (kernels/cuda/*.cu) includes for the CUDA execution model. The
// same .cu compiles with nvcc for the GPU and, with RTUNE_CUDA_SIM, as host C++ for the simulated
// device (kernels/cuda/sim/). Kernels use RT_GLOBAL / RT_DEVICE / RT_HOST_DEVICE, threadIdx & co,
// __shared__ arrays, RT_DYNAMIC_SHARED, __syncthreads(), atomics and the *_sync warp intrinsics,
// and are started only through launch(); this is the only file that writes <<<>>>.
//
//   RT_GLOBAL void scale_kernel(float* y, float a, int64_t n) {
//     for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
//       y[i] *= a;
//   }
//   launch(scale_kernel, grid_for(n, 256), 256, /*smem=*/0, stream, y, 2.f, n);
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "kernels/cuda/runtime.h"

#if defined(RTUNE_CUDA_SIM)
#include <tuple>

#include "kernels/cuda/sim/cuda_names.h"

#define RT_GLOBAL
#define RT_DEVICE
#define RT_HOST_DEVICE
#define RT_FORCEINLINE inline
#define RT_LAUNCH_BOUNDS(max_threads)
// One block's shared variables: blocks run one at a time per OS thread, all threads of a block on
// that OS thread, so a thread_local static is exactly "one per block".
// (The CUDA headers define __shared__ as an attribute for host compilers only when it is not yet
// defined; replace that one if they came first.)
#undef __shared__
#define __shared__ static thread_local
// Dynamic shared memory (the launch's smem_bytes), as `T* name`. Filled with 0xFF bytes (NaN) at
// the start of every block in the simulator.
#define RT_DYNAMIC_SHARED(T, name) T* name = static_cast<T*>(::rtune::cuda::sim::dynamic_shared_memory())

#else  // real GPU build: nvcc
#include <cuda_runtime.h>

#define RT_GLOBAL __global__
#define RT_DEVICE __device__
#define RT_HOST_DEVICE __host__ __device__
#define RT_FORCEINLINE __forceinline__
#define RT_LAUNCH_BOUNDS(max_threads) __launch_bounds__(max_threads)
#define RT_DYNAMIC_SHARED(T, name)                        \
  extern __shared__ __align__(16) unsigned char rt_dynamic_smem_[]; \
  T* name = reinterpret_cast<T*>(rt_dynamic_smem_)
#endif

namespace rtune::cuda {

// Most blocks grid_for() asks for. Kernels launched with it must loop grid-stride. The simulator
// caps lower (each simulated thread costs a fiber start), which also exposes a missing loop in
// tests with modest sizes.
#if defined(RTUNE_CUDA_SIM)
inline constexpr int64_t kMaxGridBlocks = 128;
#else
inline constexpr int64_t kMaxGridBlocks = 4096;
#endif

// Blocks for n elements at `threads` per block: ceil(n / threads), at least 1, at most kMaxGridBlocks.
inline dim3 grid_for(int64_t n, int threads) {
  int64_t b = n <= 0 ? 1 : (n + threads - 1) / threads;
  return dim3(unsigned(b < kMaxGridBlocks ? b : kMaxGridBlocks));
}

// Launches kernel<<<grid, block, smem_bytes, stream>>>(args...) and checks the launch. Arguments
// convert to the kernel's parameter types as in a CUDA launch.
template <class... P, class... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem_bytes, rt::Stream stream, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "launch: argument count differs from the kernel's parameters");
#if defined(RTUNE_CUDA_SIM)
  struct Call {
    void (*kernel)(P...);
    std::tuple<std::decay_t<P>...> params;
  } call{kernel, std::tuple<std::decay_t<P>...>(static_cast<P>(std::forward<A>(args))...)};
  // The device memory the kernel may touch: what its pointer arguments point into, and what
  // pointers inside its struct arguments point into (found by scanning their aligned words).
  const void* pointers[sizeof...(P) + 1] = {};
  sim::ArgBlob blobs[sizeof...(P) + 1] = {};
  size_t np = 0, nb = 0;
  std::apply(
      [&](const auto&... p) {
        auto note = [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_pointer_v<V> && !std::is_function_v<std::remove_pointer_t<V>>)
            pointers[np++] = (const void*)(v);  // C cast: also drops volatile
          else if constexpr (std::is_class_v<V> && sizeof(V) >= sizeof(void*) && alignof(V) >= alignof(void*))
            blobs[nb++] = {&v, sizeof(V)};
        };
        (note(p), ...);
      },
      call.params);
  sim::run_grid(grid, block, smem_bytes, stream, sim::KernelArgs{pointers, np, blobs, nb},
                [](void* c) {
                  auto* k = static_cast<Call*>(c);
                  std::apply(k->kernel, k->params);  // each simulated thread gets its own copies
                },
                &call);
#else
  kernel<<<grid, block, smem_bytes, stream.raw()>>>(static_cast<P>(std::forward<A>(args))...);
  rt::check_last_launch("kernel launch");
#endif
}

}  // namespace rtune::cuda
