// CPU linear layer (torch.nn.functional.linear): y = x wᵀ + b with Eigen GEMMs (row-major maps).
#include <Eigen/Core>
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"

namespace rtune::cpu {

namespace {
template <class T> using MatR = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using MapR = Eigen::Map<MatR<T>>;
template <class T> using CMapR = Eigen::Map<const MatR<T>>;
}  // namespace

void linear_forward(const Tensor& x0, const Tensor& w0, const Tensor& bias, Tensor& y) {
  Tensor x = x0.contiguous(), w = w0.contiguous();
  int64_t N = x.size(0), I = x.size(1), O = w.size(0);
  with_contiguous_output(y, [&](Tensor& yd) {
    dispatch_float("linear_forward", x, [&](auto tag) {
      using T = decltype(tag);
      MapR<T> Y(yd.data<T>(), N, O);
      Y.noalias() = CMapR<T>(x.data<T>(), N, I) * CMapR<T>(w.data<T>(), O, I).transpose();
      if (bias.defined()) {
        Tensor b = bias.contiguous();
        Y.rowwise() += Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>(b.data<T>(), O);
      }
    });
  });
}

void linear_backward_input(const Tensor& gy0, const Tensor& w0, Tensor& gx) {
  Tensor gy = gy0.contiguous(), w = w0.contiguous();
  int64_t N = gy.size(0), O = gy.size(1), I = w.size(1);
  with_contiguous_output(gx, [&](Tensor& gxd) {
    dispatch_float("linear_backward_input", gy, [&](auto tag) {
      using T = decltype(tag);
      MapR<T>(gxd.data<T>(), N, I).noalias() = CMapR<T>(gy.data<T>(), N, O) * CMapR<T>(w.data<T>(), O, I);
    });
  });
}

void linear_backward_weight(const Tensor& gy0, const Tensor& x0, Tensor& gw) {
  Tensor gy = gy0.contiguous(), x = x0.contiguous();
  int64_t N = gy.size(0), O = gy.size(1), I = x.size(1);
  with_contiguous_output(gw, [&](Tensor& gwd) {
    dispatch_float("linear_backward_weight", gy, [&](auto tag) {
      using T = decltype(tag);
      MapR<T>(gwd.data<T>(), O, I).noalias() =
          CMapR<T>(gy.data<T>(), N, O).transpose() * CMapR<T>(x.data<T>(), N, I);
    });
  });
}

void linear_backward_bias(const Tensor& gy0, Tensor& gb) {
  Tensor gy = gy0.contiguous();
  int64_t N = gy.size(0), O = gy.size(1);
  dispatch_float("linear_backward_bias", gy, [&](auto tag) {
    using T = decltype(tag);
    const T* p = gy.data<T>();
    T* out = gb.data<T>();
    for (int64_t o = 0; o < O; ++o) {
      double acc = 0;
      for (int64_t n = 0; n < N; ++n) acc += p[n * O + o];
      out[o] = T(acc);
    }
  });
}

}  // namespace rtune::cpu
