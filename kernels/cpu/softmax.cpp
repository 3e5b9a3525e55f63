// CPU softmax / log_softmax over dim 1 of an N×C tensor and cross-entropy with class indices and
// label smoothing (torch.nn.functional.cross_entropy, reduction mean or sum, no class weights).
#include <cmath>
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_util.h"

namespace rtune::cpu {

namespace {
template <class T> void log_softmax_rows(const T* x, T* y, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; ++n) {
    const T* r = x + n * C;
    T m = r[0];
    for (int64_t c = 1; c < C; ++c) m = std::max(m, r[c]);
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += std::exp(double(r[c] - m));
    T lse = m + T(std::log(s));
    for (int64_t c = 0; c < C; ++c) y[n * C + c] = r[c] - lse;
  }
}
void check_2d(const char* op, const Tensor& x) {
  RTUNE_CHECK(x.dim() == 2, "{}: expected an N×C tensor, got {}", op, x.str());
}
}  // namespace

void softmax_forward(const Tensor& x0, Tensor& y) {
  check_2d("softmax_forward", x0);
  Tensor x = x0.contiguous();
  with_contiguous_output(y, [&](Tensor& yd) {
    dispatch_float("softmax_forward", x, [&](auto tag) {
      using T = decltype(tag);
      int64_t N = x.size(0), C = x.size(1);
      T* py = yd.data<T>();
      log_softmax_rows(x.data<T>(), py, N, C);
      for (int64_t i = 0; i < N * C; ++i) py[i] = std::exp(py[i]);
    });
  });
}

void softmax_backward(const Tensor& gy0, const Tensor& y0, Tensor& gx) {
  Tensor gy = gy0.contiguous(), y = y0.contiguous();
  with_contiguous_output(gx, [&](Tensor& gxd) {
    dispatch_float("softmax_backward", y, [&](auto tag) {
      using T = decltype(tag);
      int64_t N = y.size(0), C = y.size(1);
      const T* g = gy.data<T>();
      const T* p = y.data<T>();
      T* o = gxd.data<T>();
      for (int64_t n = 0; n < N; ++n) {
        double dot = 0;
        for (int64_t c = 0; c < C; ++c) dot += double(g[n * C + c]) * p[n * C + c];
        for (int64_t c = 0; c < C; ++c) o[n * C + c] = T(p[n * C + c] * (g[n * C + c] - dot));
      }
    });
  });
}

void log_softmax_forward(const Tensor& x0, Tensor& y) {
  check_2d("log_softmax_forward", x0);
  Tensor x = x0.contiguous();
  with_contiguous_output(y, [&](Tensor& yd) {
    dispatch_float("log_softmax_forward", x, [&](auto tag) {
      using T = decltype(tag);
      log_softmax_rows(x.data<T>(), yd.data<T>(), x.size(0), x.size(1));
    });
  });
}

void log_softmax_backward(const Tensor& gy0, const Tensor& y0, Tensor& gx) {
  Tensor gy = gy0.contiguous(), y = y0.contiguous();
  with_contiguous_output(gx, [&](Tensor& gxd) {
    dispatch_float("log_softmax_backward", y, [&](auto tag) {
      using T = decltype(tag);
      int64_t N = y.size(0), C = y.size(1);
      const T* g = gy.data<T>();
      const T* p = y.data<T>();
      T* o = gxd.data<T>();
      for (int64_t n = 0; n < N; ++n) {
        double s = 0;
        for (int64_t c = 0; c < C; ++c) s += g[n * C + c];
        for (int64_t c = 0; c < C; ++c) o[n * C + c] = T(g[n * C + c] - std::exp(double(p[n * C + c])) * s);
      }
    });
  });
}

void cross_entropy_forward(const Tensor& logits, const Tensor& target0, double ls, Reduction r, Tensor& loss,
                           Tensor& log_probs) {
  check_2d("cross_entropy", logits);
  require_dtype("cross_entropy (target)", target0, DType::i64);
  int64_t N = logits.size(0), C = logits.size(1);
  RTUNE_CHECK(target0.dim() == 1 && target0.size(0) == N, "cross_entropy: target {} for logits {}", target0.str(),
              logits.str());
  RTUNE_CHECK(ls >= 0 && ls <= 1, "cross_entropy: label_smoothing {} outside [0, 1]", ls);
  Tensor target = target0.contiguous();
  log_softmax_forward(logits, log_probs);
  dispatch_float("cross_entropy", logits, [&](auto tag) {
    using T = decltype(tag);
    const T* lp = log_probs.data<T>();
    const int64_t* t = target.data<int64_t>();
    double total = 0;
    for (int64_t n = 0; n < N; ++n) {
      RTUNE_CHECK(t[n] >= 0 && t[n] < C, "cross_entropy: target {} at index {} out of range for {} classes", t[n], n,
                  C);
      double nll = -double(lp[n * C + t[n]]), smooth = 0;
      if (ls > 0) {
        for (int64_t c = 0; c < C; ++c) smooth -= lp[n * C + c];
        smooth /= double(C);
      }
      total += (1 - ls) * nll + ls * smooth;
    }
    *loss.data<T>() = T(r == Reduction::mean ? total / double(N) : total);
  });
}

void cross_entropy_backward(const Tensor& gloss, const Tensor& log_probs, const Tensor& target0, double ls,
                            Reduction r, Tensor& glogits) {
  Tensor target = target0.contiguous();
  int64_t N = log_probs.size(0), C = log_probs.size(1);
  with_contiguous_output(glogits, [&](Tensor& gd) {
    dispatch_float("cross_entropy_backward", log_probs, [&](auto tag) {
      using T = decltype(tag);
      double g = double(gloss.item<T>()) * (r == Reduction::mean ? 1.0 / double(N) : 1.0);
      const T* lp = log_probs.data<T>();
      const int64_t* t = target.data<int64_t>();
      T* o = gd.data<T>();
      // d/dz of (1-ε)·nll + ε·mean_c(-logp_c) = softmax − ((1-ε)·onehot + ε/C)
      for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c) {
          double q = (c == t[n] ? 1 - ls : 0.0) + ls / double(C);
          o[n * C + c] = T(g * (std::exp(double(lp[n * C + c])) - q));
        }
    });
  });
}

}  // namespace rtune::cpu
