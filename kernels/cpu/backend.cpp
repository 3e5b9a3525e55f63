#include "kernels/cpu/backend.h"

#include <omp.h>

#include <atomic>
#include <cstdlib>
#include "engine/error.h"
#include "kernels/cpu/onednn/isa.h"  // declarations only: defined where oneDNN is built in

namespace rtune::cpu {

namespace {
std::atomic<int64_t> g_executions{0}, g_inference_executions{0}, g_fused_executions{0};

Backend initial_backend() {
  const char* env = std::getenv("RTUNE_CPU_BACKEND");
  if (env && *env) {
    Backend b = parse_backend(env, "RTUNE_CPU_BACKEND");
    if (b == Backend::onednn && !onednn_built())
      invalid_argument("RTUNE_CPU_BACKEND=onednn: this rtune was built without oneDNN (install libdnnl-dev and "
                       "re-run cmake); unset it or use eigen");
    return b;
  }
  return onednn_built() ? Backend::onednn : Backend::eigen;
}

// Read once, on first use (the environment is fixed by then); set_backend() replaces it.
std::atomic<Backend>& current() {
  static std::atomic<Backend> b{initial_backend()};
  return b;
}
}  // namespace

bool onednn_built() {
#if defined(RTUNE_HAVE_ONEDNN)
  return true;
#else
  return false;
#endif
}

Backend backend() { return current().load(std::memory_order_relaxed); }

void set_backend(Backend b) {
  if (b == Backend::onednn && !onednn_built())
    invalid_argument("--cpu-backend onednn: this rtune was built without oneDNN (install libdnnl-dev and re-run "
                     "cmake); use --cpu-backend eigen");
  current().store(b, std::memory_order_relaxed);
}

Backend parse_backend(const std::string& name, const char* what) {
  if (name == "eigen") return Backend::eigen;
  if (name == "onednn") return Backend::onednn;
  invalid_argument("{} '{}': expected eigen or onednn", what, name);
}

const char* backend_name(Backend b) { return b == Backend::onednn ? "onednn" : "eigen"; }

namespace {
// The oneDNN backend is in force and oneDNN's run-time ISA includes `isa`.
bool onednn_isa_has(onednn::Isa isa) {
#if defined(RTUNE_HAVE_ONEDNN)
  return backend() == Backend::onednn && onednn::isa_has(isa);
#else
  (void)isa;
  return false;
#endif
}
}  // namespace

bool native_bf16() { return onednn_isa_has(onednn::Isa::avx512_core_bf16); }
bool onednn_bf16_kernels() { return onednn_isa_has(onednn::Isa::avx512_core); }
bool onednn_prefers_nhwc() { return onednn_isa_has(onednn::Isa::avx512_core); }

bool use_onednn(DType dtype) { return dtype == DType::f32 && backend() == Backend::onednn; }

int64_t onednn_executions() { return g_executions.load(std::memory_order_relaxed); }
void note_onednn_execution() { g_executions.fetch_add(1, std::memory_order_relaxed); }
int64_t onednn_inference_executions() { return g_inference_executions.load(std::memory_order_relaxed); }
void note_onednn_inference_execution() { g_inference_executions.fetch_add(1, std::memory_order_relaxed); }
int64_t onednn_fused_executions() { return g_fused_executions.load(std::memory_order_relaxed); }
void note_onednn_fused_execution() { g_fused_executions.fetch_add(1, std::memory_order_relaxed); }

namespace {
std::atomic<bool> g_threads_chosen{false};
}

void set_compute_threads(int n) {
  if (n <= 0) return;
  omp_set_num_threads(n);
  g_threads_chosen = true;
}

bool compute_threads_chosen() { return g_threads_chosen || std::getenv("OMP_NUM_THREADS") != nullptr; }

}  // namespace rtune::cpu
