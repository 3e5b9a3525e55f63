#include "engine/rng.h"
#include <cmath>
#include <numbers>
#include <sstream>

namespace rtune {

int64_t Rng::randint(int64_t lo, int64_t hi) {
  RTUNE_CHECK(hi > lo, "randint: empty range [{}, {})", lo, hi);
  uint64_t range = uint64_t(hi - lo), limit = UINT64_MAX - UINT64_MAX % range;
  uint64_t v;
  do v = engine_(); while (v >= limit);
  return lo + int64_t(v % range);
}

double Rng::normal(double mean, double std) {
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

std::vector<int64_t> Rng::permutation(int64_t n) {
  std::vector<int64_t> p(size_t(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) p[size_t(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[size_t(i)], p[size_t(randint(0, i + 1))]);
  return p;
}

Rng Rng::derive(uint64_t seed, uint64_t stream) {
  // splitmix64 of (seed, stream): well-separated seeds for child streams.
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * (stream + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return Rng(z ^ (z >> 31));
}

std::string Rng::state() const {
  std::ostringstream os;
  os << engine_ << ' ' << has_spare_ << ' ' << std::hexfloat << spare_;
  return os.str();
}

void Rng::set_state(const std::string& s) {
  std::istringstream is(s);
  std::string spare;
  is >> engine_ >> has_spare_ >> spare;
  RTUNE_CHECK(!is.fail(), "Rng::set_state: malformed state");
  spare_ = std::strtod(spare.c_str(), nullptr);
}

namespace {
template <class F> Tensor generate(const Shape& shape, TensorOptions o, F&& f) {
  std::vector<double> v(size_t(shape_numel(shape)));
  for (double& e : v) e = f();
  return from_vector(v, shape, o.dtype).to(o.device);
}
}  // namespace

Tensor rand(const Shape& shape, Rng& rng, TensorOptions o) { return generate(shape, o, [&] { return rng.uniform(); }); }
Tensor uniform(const Shape& shape, double lo, double hi, Rng& rng, TensorOptions o) {
  return generate(shape, o, [&] { return rng.uniform(lo, hi); });
}
Tensor randn(const Shape& shape, Rng& rng, TensorOptions o) { return generate(shape, o, [&] { return rng.normal(); }); }
Tensor bernoulli(const Shape& shape, double p, Rng& rng, TensorOptions o) {
  return generate(shape, o, [&] { return rng.bernoulli(p) ? 1.0 : 0.0; });
}

}  // namespace rtune
