// Seeded, reproducible random numbers for initialisation, shuffling and augmentation (the data pipeline
// draws from it too, so it is header-only: io/ uses it without linking the core). The streams are
// defined here (mt19937_64 + explicit transforms), not by the standard library's distributions, so the
// same seed gives the same numbers on every platform and compiler. Tensors of random numbers:
// engine/random_tensor.h.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "engine/error.h"

namespace rtune {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : engine_(seed) {}
  uint64_t next_u64() { return engine_(); }
  double uniform() { return double(engine_() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // [lo, hi), unbiased (rejection), as torch.randint(lo, hi, (1,)); a range of one value or none gives lo
  // without a draw.
  int64_t randint(int64_t lo, int64_t hi);
  double normal(double mean = 0.0, double std = 1.0);
  bool bernoulli(double p) { return uniform() < p; }  // as `torch.rand(1) < p`
  std::vector<int64_t> permutation(int64_t n);  // Fisher–Yates
  // Fisher–Yates in place, drawing as permutation() does (torch.randperm's role).
  template <class T> void shuffle(std::span<T> v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[size_t(randint(0, int64_t(i)))]);
  }
  // An independent stream for (seed, a, b), e.g. (seed, epoch, sample index) in the data pipeline: same
  // inputs, same stream, whatever thread asks. splitmix64 mixing keeps nearby keys uncorrelated.
  static Rng for_key(uint64_t seed, uint64_t a, uint64_t b = 0);

  // Exact save/restore of the generator state (for resumable training).
  std::string state() const;
  void set_state(const std::string& s);

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0;
};

inline int64_t Rng::randint(int64_t lo, int64_t hi) {
  if (hi - lo <= 1) return lo;
  uint64_t range = uint64_t(hi - lo), limit = UINT64_MAX - UINT64_MAX % range;
  uint64_t v;
  do v = engine_(); while (v >= limit);
  return lo + int64_t(v % range);
}

inline double Rng::normal(double mean, double std) {
  if (has_spare_) {
    has_spare_ = false;
    return mean + std * spare_;
  }
  double u1 = 1.0 - uniform(), u2 = uniform();  // u1 in (0, 1]
  double r = std::sqrt(-2.0 * std::log(u1)), t = 2.0 * std::numbers::pi * u2;
  spare_ = r * std::sin(t);
  has_spare_ = true;
  return mean + std * r * std::cos(t);
}

inline std::vector<int64_t> Rng::permutation(int64_t n) {
  std::vector<int64_t> p(size_t(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) p[size_t(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[size_t(i)], p[size_t(randint(0, i + 1))]);
  return p;
}

namespace rng_detail {
inline uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
}  // namespace rng_detail

inline Rng Rng::for_key(uint64_t seed, uint64_t a, uint64_t b) {
  using rng_detail::splitmix64;
  return Rng(splitmix64(splitmix64(splitmix64(seed) ^ a) ^ (b + 0x632BE59BD9B4E019ull)));
}

inline std::string Rng::state() const {
  std::ostringstream os;
  os << engine_ << ' ' << has_spare_ << ' ' << std::hexfloat << spare_;
  return os.str();
}

inline void Rng::set_state(const std::string& s) {
  std::istringstream is(s);
  std::string spare;
  is >> engine_ >> has_spare_ >> spare;
  RTUNE_CHECK(!is.fail(), "Rng::set_state: malformed state");
  spare_ = std::strtod(spare.c_str(), nullptr);
}

}  // namespace rtune
