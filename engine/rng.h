// Seeded, reproducible random numbers for initialisation, shuffling and augmentation. The streams are
// defined here (mt19937_64 + explicit transforms), not by the standard library's distributions, so the
// same seed gives the same numbers on every platform and compiler.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <vector>
#include "engine/tensor.h"

namespace rtune {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : engine_(seed) {}
  uint64_t next_u64() { return engine_(); }
  double uniform() { return double(engine_() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int64_t randint(int64_t lo, int64_t hi);  // [lo, hi), unbiased
  double normal(double mean = 0.0, double std = 1.0);
  bool bernoulli(double p) { return uniform() < p; }
  std::vector<int64_t> permutation(int64_t n);  // Fisher–Yates
  // A child generator whose stream depends only on this seed and `stream` (for per-worker streams).
  static Rng derive(uint64_t seed, uint64_t stream);

  // Exact save/restore of the generator state (for resumable training).
  std::string state() const;
  void set_state(const std::string& s);

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0;
};

// Tensors filled on the CPU (then moved to `o.device`).
Tensor rand(const Shape& shape, Rng& rng, TensorOptions o = {});                        // U[0,1)
Tensor uniform(const Shape& shape, double lo, double hi, Rng& rng, TensorOptions o = {});
Tensor randn(const Shape& shape, Rng& rng, TensorOptions o = {});                       // N(0,1)
Tensor bernoulli(const Shape& shape, double p, Rng& rng, TensorOptions o = {});         // 0/1 values

}  // namespace rtune
