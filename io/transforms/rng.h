// The seeded random source of the data pipeline. Same seed, same stream, on every platform: the
// number-to-range conversions are written here instead of using std::*_distribution, whose output
// is implementation-defined. torchvision draws from torch's global generator; we take an explicit one.
#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <utility>

namespace rtune::io {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : eng_(seed) {}

  // An independent stream for (seed, a, b), e.g. (seed, epoch, sample index): same inputs, same
  // stream, whatever thread asks for it. splitmix64 mixing keeps nearby keys uncorrelated.
  static Rng for_key(uint64_t seed, uint64_t a, uint64_t b = 0) {
    return Rng(mix(mix(mix(seed) ^ a) ^ (b + 0x632BE59BD9B4E019ull)));
  }

  uint64_t next_u64() { return eng_(); }

  // Uniform in [0, 1) with 53 random bits.
  double uniform01() { return double(eng_() >> 11) * 0x1.0p-53; }

  // Uniform in [lo, hi) (hi == lo gives lo), as torch.empty(1).uniform_(lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform01(); }

  // Integer uniform in [lo, hi_exclusive), as torch.randint(lo, hi, (1,)). Unbiased (rejection).
  int64_t randint(int64_t lo, int64_t hi_exclusive) {
    uint64_t range = uint64_t(hi_exclusive - lo);
    if (range <= 1) return lo;
    uint64_t limit = UINT64_MAX - UINT64_MAX % range;
    uint64_t r;
    do r = eng_(); while (r >= limit);
    return lo + int64_t(r % range);
  }

  // True with probability p, as `torch.rand(1) < p`.
  bool bernoulli(double p) { return uniform01() < p; }

  // Fisher-Yates: a random permutation, as torch.randperm.
  template <class T>
  void shuffle(std::span<T> v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[size_t(randint(0, int64_t(i)))]);
  }

 private:
  static uint64_t mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::mt19937_64 eng_;
};

}  // namespace rtune::io
