// The simulated device's execution model: a kernel launch runs every block of the grid on the host,
// each block's threads as fibers on one OS thread. __syncthreads() is a real barrier and warp
// intrinsics a real rendezvous of the lanes in their mask; between those points the threads run in
// a seeded random order, so a missing barrier changes the result. Misuse with undefined results
// on the GPU (divergent barriers, mismatched warp masks, reading a lane outside the mask) throws
// rtune::Error naming the block, threads and call sites.
#pragma once
#include <cstddef>
#include <cstdint>
#include <source_location>

#include "kernels/cuda/runtime.h"

// CUDA's built-in vector types. When the CUDA headers are available (they are for the cuDNN/cuBLAS
// stand-ins) the build defines RTUNE_SIM_CUDA_HEADERS and the real vector_types.h is used, so a
// source may include both launch.cuh and cudnn.h; otherwise the same layout is declared here.
#if defined(RTUNE_SIM_CUDA_HEADERS)
#include <vector_types.h>
#else
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return {x, y, z}; }
};
#endif

// The built-in variables of the simulated thread running on this OS thread. Local-exec TLS: the
// simulator links into executables only, and the default initial-exec access, once the linker
// relaxes it, defeats UBSan's null check on TLS addresses (a false "store to null pointer").
#define RT_SIM_TLS __attribute__((tls_model("local-exec")))
inline thread_local uint3 threadIdx RT_SIM_TLS{};
inline thread_local uint3 blockIdx RT_SIM_TLS{};
inline thread_local dim3 blockDim RT_SIM_TLS{};
inline thread_local dim3 gridDim RT_SIM_TLS{};

namespace rtune::cuda::sim {

// Seed of the thread order (default: env RTUNE_SIM_SEED, else a fixed value). Setting it also
// restarts the launch counter, so the same seed gives the same schedules.
void set_seed(uint64_t seed);
uint64_t seed();

// What a kernel may touch: the live allocations its pointer arguments point into (a pointer into
// the device range outside every live allocation is a use after free: rt::CudaError), and those
// that pointer-sized, aligned words of its struct arguments (`blobs`) point into.
struct ArgBlob {
  const void* data = nullptr;
  size_t bytes = 0;
};
struct KernelArgs {
  const void* const* pointers = nullptr;
  size_t count = 0;
  const ArgBlob* blobs = nullptr;
  size_t blob_count = 0;
};

// Runs body(ctx) once per thread of every block. Validates the configuration like cudaLaunchKernel
// (cudaErrorInvalidConfiguration / InvalidValue as rt::CudaError) and the stream. Device memory
// named by `args` is accessible for the duration. Rethrows the first error a simulated thread raised.
void run_grid(dim3 grid, dim3 block, size_t dynamic_smem, rt::Stream s, KernelArgs args, void (*body)(void*),
              void* ctx);

// Launches so far (all kernels), for tests and statistics.
uint64_t launch_count();

// ---- hooks behind the CUDA names in cuda_names.h (valid only inside a kernel)
void sync_block(std::source_location where);
void* dynamic_shared_memory();
enum class WarpOp : uint8_t { shfl_idx, shfl_up, shfl_down, shfl_xor, ballot, all, any, sync };
// The lanes of `mask` meet; returns this lane's result (the shuffled bits, or the vote).
uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t bits, int arg, int width, std::source_location where);
unsigned active_mask();

}  // namespace rtune::cuda::sim
