// nvcc side of test_optim_rules_cuda: the per-element rules of update_rules.h inside a CUDA kernel.
// Kept free of fmt/doctest (fmt's consteval format strings do not compile under nvcc).
#include <cuda_runtime.h>

#include "kernels/update_rules.h"
#include "tests/optim/optim_rules_kernels.h"

namespace rtune::test {
namespace {

template <class T>
__global__ void step_kernel(int opt, T* p, const T* g, T* a, T* b, T* c, optim::SgdHyper sh, optim::AdamStep as,
                            optim::RmspropHyper rh, bool first, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  if (opt == 0) optim::sgd_update(p[i], g[i], a[i], sh, first);
  else if (opt == 1) optim::adam_update(p[i], g[i], a[i], b[i], c[i], as);
  else optim::rmsprop_update(p[i], g[i], a[i], b[i], c[i], rh);
}

template <class T>
const char* run(int opt, int steps, std::vector<T>& p, const std::vector<T>& g, const optim::SgdHyper& sh,
                const optim::AdamHyper& ah, const optim::RmspropHyper& rh) {
  const int n = int(p.size());
  const size_t bytes = p.size() * sizeof(T);
  T *dp = nullptr, *dg = nullptr, *da = nullptr, *db = nullptr, *dc = nullptr;
  const char* err = nullptr;
  auto ok = [&](cudaError_t e) {
    if (e != cudaSuccess && !err) err = cudaGetErrorString(e);
    return e == cudaSuccess;
  };
  if (ok(cudaMalloc(&dp, bytes)) && ok(cudaMalloc(&dg, bytes)) && ok(cudaMalloc(&da, bytes)) &&
      ok(cudaMalloc(&db, bytes)) && ok(cudaMalloc(&dc, bytes)) &&
      ok(cudaMemcpy(dp, p.data(), bytes, cudaMemcpyHostToDevice)) &&
      ok(cudaMemcpy(dg, g.data(), bytes, cudaMemcpyHostToDevice)) && ok(cudaMemset(da, 0, bytes)) &&
      ok(cudaMemset(db, 0, bytes)) && ok(cudaMemset(dc, 0, bytes))) {
    for (int s = 1; s <= steps && !err; ++s) {
      step_kernel<T><<<(n + 255) / 256, 256>>>(opt, dp, dg, da, db, dc, sh, optim::make_adam_step(ah, s), rh,
                                               s == 1, n);
      ok(cudaGetLastError());
    }
    if (!err) ok(cudaMemcpy(p.data(), dp, bytes, cudaMemcpyDeviceToHost));
  }
  for (T* d : {dp, dg, da, db, dc}) cudaFree(d);
  return err;
}

}  // namespace

bool cuda_device_present() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

const char* run_rules_on_gpu(int opt, int steps, std::vector<float>& p, const std::vector<float>& g,
                             const optim::SgdHyper& sh, const optim::AdamHyper& ah, const optim::RmspropHyper& rh) {
  return run<float>(opt, steps, p, g, sh, ah, rh);
}
const char* run_rules_on_gpu(int opt, int steps, std::vector<double>& p, const std::vector<double>& g,
                             const optim::SgdHyper& sh, const optim::AdamHyper& ah, const optim::RmspropHyper& rh) {
  return run<double>(opt, steps, p, g, sh, ah, rh);
}

}  // namespace rtune::test
