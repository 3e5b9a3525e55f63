// Helpers for the cuDNN/cuBLAS stand-in tests: RAII descriptors, seeded random data, bf16 rounding
// and a tolerance check that reports the worst element (|a - b| <= atol + rtol*|ref|).
#pragma once
#include <cublas_v2.h>
#include <cudnn.h>
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/sim/call_log.h"

namespace standin_test {

struct Handle {
  cudnnHandle_t h = nullptr;
  Handle() { REQUIRE(cudnnCreate(&h) == CUDNN_STATUS_SUCCESS); }
  ~Handle() { cudnnDestroy(h); }
};

struct Tensor {
  cudnnTensorDescriptor_t d = nullptr;
  Tensor() { REQUIRE(cudnnCreateTensorDescriptor(&d) == CUDNN_STATUS_SUCCESS); }
  ~Tensor() { cudnnDestroyTensorDescriptor(d); }
};

struct Filter {
  cudnnFilterDescriptor_t d = nullptr;
  Filter() { REQUIRE(cudnnCreateFilterDescriptor(&d) == CUDNN_STATUS_SUCCESS); }
  ~Filter() { cudnnDestroyFilterDescriptor(d); }
};

struct Conv {
  cudnnConvolutionDescriptor_t d = nullptr;
  Conv() { REQUIRE(cudnnCreateConvolutionDescriptor(&d) == CUDNN_STATUS_SUCCESS); }
  ~Conv() { cudnnDestroyConvolutionDescriptor(d); }
};

struct Pooling {
  cudnnPoolingDescriptor_t d = nullptr;
  Pooling() { REQUIRE(cudnnCreatePoolingDescriptor(&d) == CUDNN_STATUS_SUCCESS); }
  ~Pooling() { cudnnDestroyPoolingDescriptor(d); }
};

// Lint findings become exceptions for the duration of a test.
struct LintThrows {
  rtune::sim::LintHandler prev;
  LintThrows() {
    prev = rtune::sim::set_lint_handler([](const std::string& m) { throw std::runtime_error("lint: " + m); });
  }
  ~LintThrows() { rtune::sim::set_lint_handler(prev); }
};

inline std::vector<float> randu(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

inline uint16_t to_bf16(float f) {  // round to nearest even, written independently of the stand-in
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t lsb = (u >> 16) & 1u;
  return uint16_t((u + 0x7fffu + lsb) >> 16);
}

inline float from_bf16(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Passes when every |got - ref| <= atol + rtol*|ref|; otherwise reports the worst element.
inline void check_close(const std::vector<double>& got, const std::vector<double>& ref, double atol, double rtol,
                        const char* what) {
  REQUIRE(got.size() == ref.size());
  size_t worst = 0;
  double worst_excess = -1e300;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(got[i] - ref[i]), allowed = atol + rtol * std::fabs(ref[i]);
    const double excess = std::isnan(err) ? 1e300 : err - allowed;
    if (excess > worst_excess) worst_excess = excess, worst = i;
  }
  INFO(what << ": worst element " << worst << " got " << got[worst] << " ref " << ref[worst] << " (atol " << atol
            << ", rtol " << rtol << ")");
  CHECK(worst_excess <= 0.0);
}

template <class T>
std::vector<double> to_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

}  // namespace standin_test
