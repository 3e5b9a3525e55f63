// The update rules of kernels/update_rules.h compiled by nvcc and run in a CUDA kernel agree with the
// same rules compiled for the host, element by element (tests/optim/test_optim_rules.cpp: they match PyTorch). nvcc contracts a*b+c into FMAs, so results agree to rounding, not bit for bit.
// Skipped (exit code 77) when no CUDA device is present.
#include <cmath>
#include <cstdlib>

#include "tests/optim/optim_rules_kernels.h"
#include "tests/optim/reference.h"

using namespace rtune::optim;

namespace {

template <class T>
void compare_gpu_cpu(int opt, double rtol) {
  const int n = 1000, steps = 4;
  std::vector<T> p(n), g(n);
  for (int i = 0; i < n; ++i) p[i] = T(std::sin(0.3 * i)), g[i] = T(std::cos(0.71 * i) * 2);
  const SgdHyper sh{.lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = true};
  const AdamHyper ah{.lr = 1e-2, .weight_decay = 1e-2, .amsgrad = true, .decoupled = true};
  const RmspropHyper rh{.lr = 1e-2, .weight_decay = 1e-3, .momentum = 0.9, .centered = true};
  auto pc = p;
  std::vector<T> a(n, T(0)), b(n, T(0)), c(n, T(0));
  for (int s = 1; s <= steps; ++s) {
    for (int i = 0; i < n; ++i) {
      if (opt == 0) sgd_update(pc[i], g[i], a[i], sh, s == 1);
      else if (opt == 1) adam_update(pc[i], g[i], a[i], b[i], c[i], make_adam_step(ah, s));
      else rmsprop_update(pc[i], g[i], a[i], b[i], c[i], rh);
    }
  }
  const char* err = rtune::test::run_rules_on_gpu(opt, steps, p, g, sh, ah, rh);
  REQUIRE_MESSAGE(err == nullptr, (err ? err : ""));
  CHECK_CLOSE_VEC(p, pc, rtol * 0.1, rtol, fmt::format("optimizer {} float{}", opt, 8 * sizeof(T)));
}

}  // namespace

TEST_CASE("update rules: CUDA kernel == host (sgd nesterov+wd, adamw amsgrad, rmsprop centered+momentum)") {
  if (!rtune::test::cuda_device_present()) std::exit(77);
  for (int opt = 0; opt < 3; ++opt) {
    compare_gpu_cpu<double>(opt, 1e-12);
    compare_gpu_cpu<float>(opt, 1e-5);
  }
}
