// Tensors of seeded random numbers (weight initialisation, test inputs), drawn from an Rng.
#pragma once
#include "engine/rng.h"
#include "engine/tensor.h"

namespace rtune {

// Tensors filled on the CPU (then moved to `o.device`).
Tensor rand(const Shape& shape, Rng& rng, TensorOptions o = {});                        // U[0,1)
Tensor uniform(const Shape& shape, double lo, double hi, Rng& rng, TensorOptions o = {});
Tensor randn(const Shape& shape, Rng& rng, TensorOptions o = {});                       // N(0,1)
Tensor bernoulli(const Shape& shape, double p, Rng& rng, TensorOptions o = {});         // 0/1 values

}  // namespace rtune
