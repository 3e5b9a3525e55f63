// Which library computes the CPU's float32 convolutions: Eigen (im2col + GEMM, the readable oracle) or
// oneDNN (the library PyTorch's CPU convolutions use). float64 always runs on Eigen: it is the oracle of
// every gradient check. This is the one place that holds the choice.
#pragma once
#include <cstdint>
#include <string>
#include "engine/dtype.h"

namespace rtune::cpu {

enum class Backend : uint8_t { eigen, onednn };

// True when this build links oneDNN (found at configure time).
bool onednn_built();

// The backend in force: set_backend()'s last value, else RTUNE_CPU_BACKEND (eigen|onednn) read once,
// else oneDNN when built, else Eigen. Throws rtune::InvalidArgument for a bad RTUNE_CPU_BACKEND.
Backend backend();

// requires: b == eigen or onednn_built(); otherwise throws rtune::InvalidArgument saying the build
// lacks oneDNN. Process-wide: meant to be set once, before any work (rtune's --cpu-backend).
void set_backend(Backend b);

// "eigen" | "onednn" -> Backend; anything else throws rtune::InvalidArgument naming `what`.
Backend parse_backend(const std::string& name, const char* what = "--cpu-backend");
const char* backend_name(Backend b);

// True when a CPU op on `dtype` should run on oneDNN: float32 and backend() == onednn.
bool use_onednn(DType dtype);

// True when oneDNN is in force and this CPU multiplies bfloat16 in hardware (AVX512_BF16 or AMX), as
// oneDNN detects it at run time (ONEDNN_MAX_CPU_ISA=AVX2 lowers it, which the tests use to play an AVX2
// machine): what `--precision bf16` (and `auto` choosing bf16) need on the CPU.
bool native_bf16();
// True when oneDNN is in force and has bf16 convolution kernels for this CPU (AVX-512: native with
// AVX512_BF16, emulated without). Elsewhere a bf16-products convolution (Conv2dArgs) rounds its inputs
// to bf16 and runs the float32 kernels on them: the same products, summed in another order.
bool onednn_bf16_kernels();
// True when oneDNN is in force and computes faster on channels-last activations than on its own blocked
// layout (behind a reorder per convolution): its AVX-512 kernels. oneDNN 2.6's AVX2 kernels run slower
// on nhwc (2 cores, ResNet-18 b32 steps: all layers ~15%, inference ~9%; bench/RESULTS.md).
bool onednn_prefers_nhwc();

// How many oneDNN primitives rtune has executed in this process (tests prove the switch changes the path).
int64_t onednn_executions();
void note_onednn_execution();  // called by kernels/cpu/onednn/ once per primitive executed
// How many of those were forward_inference convolutions (tests prove no-grad and frozen layers take them).
int64_t onednn_inference_executions();
void note_onednn_inference_execution();
// How many of those ran with their epilogue (residual add, ReLU) fused as post-ops.
int64_t onednn_fused_executions();
void note_onednn_fused_execution();

// The CPU kernels' threads (OpenMP, oneDNN's included): `--compute-threads`. n > 0 sets them and marks
// them chosen; 0 leaves OpenMP's default (OMP_NUM_THREADS, else every core).
void set_compute_threads(int n);
// True once set_compute_threads(n > 0) was called or OMP_NUM_THREADS is set: a default (a data-parallel
// rank's share of the cores) must not override the user's choice.
bool compute_threads_chosen();

}  // namespace rtune::cpu
