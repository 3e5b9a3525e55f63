#include "engine/random_tensor.h"

#include <vector>

namespace rtune {

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
