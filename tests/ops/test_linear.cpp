// linear (kernels/cpu/linear.cpp, kernels/cuda/linear.cu): float64 gradient checks with and without
// bias and through a transposed input view; with a CUDA backend, cuBLAS against Eigen (fp32 1e-4 /
// 1e-5). linear's hand-computed values share a case with pooling in tests/ops/test_pool.cpp.
#include "engine/functional.h"
#include "kernels/ops.h"
#include "tests/ops/ops_test_util.h"

using namespace rtune;
using namespace rtune::opstest;

// ------------------------------------------------------------------------------ gradient checks

TEST_CASE("gradcheck linear (with and without bias, transposed input view)") {
  Rng r(41);
  Tensor x = rn({5, 7}, r), w = rn({3, 7}, r), b = rn({3}, r);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {x, w, b},
                  {true, true, true}, 42);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return linear(in[0], in[1], Tensor()); }, {x, w},
                  {true, true}, 43);
  Tensor xt = rn({7, 5}, r).transpose(0, 1);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {xt, w, b},
                  {true, true, true}, 44);
}

#if defined(RTUNE_TEST_HAS_CUDA)
// ------------------------------------------------------------------------------------ CPU vs CUDA

using namespace rtune::cudatest;
namespace K = rtune::kernels;

CUDA_TEST_CASE("linear forward/backward: cuBLAS (row-major through column-major) == CPU") {
  Rng r(10);
  for (auto [N, I, O] : {std::tuple{5, 7, 3}, std::tuple{1, 16, 10}, std::tuple{9, 33, 17}}) {
    CAPTURE(N);
    CAPTURE(I);
    CAPTURE(O);
    Tensor x = randn_f({I, N}, r).transpose(0, 1);  // non-contiguous input
    Tensor w = randn_f({O, I}, r), b = randn_f({O}, r);
    Tensor y = empty({N, O}), dy = nan_out({N, O});
    K::linear_forward(x, w, b, y);
    K::linear_forward(dev(x), dev(w), dev(b), dy);
    check_dev(dy, y, 1e-4, 1e-5);
    K::linear_forward(x, w, Tensor(), y);
    Tensor dy0 = nan_out({N, O});
    K::linear_forward(dev(x), dev(w), Tensor(), dy0);
    check_dev(dy0, y, 1e-4, 1e-5);
    Tensor gy = randn_f({N, O}, r);
    Tensor gx = empty({N, I}), dgx = nan_out({N, I});
    K::linear_backward_input(gy, w, gx);
    K::linear_backward_input(dev(gy), dev(w), dgx);
    check_dev(dgx, gx, 1e-4, 1e-5);
    Tensor gw = empty({O, I}), dgw = nan_out({O, I});
    K::linear_backward_weight(gy, x, gw);
    K::linear_backward_weight(dev(gy), dev(x), dgw);
    check_dev(dgw, gw, 1e-4, 1e-5);
    Tensor gb = empty({O}), dgb = nan_out({O});
    K::linear_backward_bias(gy, gb);
    K::linear_backward_bias(dev(gy), dgb);
    check_dev(dgb, gb, 1e-6, 1e-6);
  }
}
#endif  // RTUNE_TEST_HAS_CUDA
