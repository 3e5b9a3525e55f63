#include "tests/core/test_util.h"
#include <cmath>
#include <cstdlib>
#include <fmt/format.h>
#include "engine/autograd.h"
#include "engine/functional.h"

namespace rtune::test {

TempDir::TempDir(const std::string& tag) {
  std::string t = (std::filesystem::temp_directory_path() / fmt::format("rtune_{}_XXXXXX", tag)).string();
  REQUIRE(::mkdtemp(t.data()) != nullptr);
  path = t;
}
TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string compare(const std::vector<double>& got, const std::vector<double>& ref, Tol tol) {
  if (got.size() != ref.size()) return fmt::format("size mismatch: got {} values, expected {}", got.size(), ref.size());
  double worst = 0;
  size_t worst_i = 0;
  bool bad = false;
  for (size_t i = 0; i < got.size(); ++i) {
    double err = std::abs(got[i] - ref[i]), allowed = tol.atol + tol.rtol * std::abs(ref[i]);
    double ratio = std::isnan(got[i]) != std::isnan(ref[i]) ? INFINITY : (allowed > 0 ? err / allowed : err);
    if (std::isnan(got[i]) && std::isnan(ref[i])) ratio = 0;
    if (ratio > worst || (std::isinf(ratio) && !bad)) {
      worst = ratio;
      worst_i = i;
    }
    if (ratio > 1) bad = true;
  }
  if (!bad) return "";
  return fmt::format("worst element {} of {}: got {:.17g}, expected {:.17g} (|diff| {:.3g}, {:.3g}x the tolerance "
                     "atol {:g} + rtol {:g}*|ref|)",
                     worst_i, got.size(), got[worst_i], ref[worst_i], std::abs(got[worst_i] - ref[worst_i]), worst,
                     tol.atol, tol.rtol);
}

std::string compare(const Tensor& got, const Tensor& ref, Tol tol) {
  if (got.shape() != ref.shape()) return fmt::format("shape mismatch: got {}, expected {}", got.str(), ref.str());
  return compare(got.to_vector<double>(), ref.to_vector<double>(), tol);
}

std::string gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> inputs,
                      const std::vector<bool>& check, uint64_t seed, GradcheckOptions o) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) continue;
    if (check[i]) {
      REQUIRE(inputs[i].dtype() == DType::f64);
      inputs[i].set_requires_grad(true);
      inputs[i].zero_grad();
    }
  }
  Tensor out = f(inputs);
  Rng rng(seed);
  Tensor probe = randn(out.shape(), rng, {DType::f64});
  Tensor loss = sum(mul(out, probe));
  loss.backward();
  auto eval = [&]() {
    NoGradGuard ng;
    Tensor y = f(inputs);
    return sum(mul(y, probe)).item<double>();
  };
  std::string report;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined() || !check[i]) continue;
    Tensor g = inputs[i].grad();
    if (!g.defined()) return fmt::format("input {} got no gradient", i);
    std::vector<double> analytic = g.to_vector<double>(), numeric(analytic.size());
    // Perturb the viewed elements in place, whatever the input's strides.
    Tensor leaf = inputs[i];
    std::vector<int64_t> idx(size_t(leaf.dim()), 0);
    for (size_t e = 0; e < numeric.size(); ++e) {
      int64_t off = leaf.offset();
      for (int64_t d = 0; d < leaf.dim(); ++d) off += idx[size_t(d)] * leaf.strides()[size_t(d)];
      double* p = static_cast<double*>(leaf.storage().data()) + off;
      double keep = *p;
      *p = keep + o.eps;
      double up = eval();
      *p = keep - o.eps;
      double down = eval();
      *p = keep;
      numeric[e] = (up - down) / (2 * o.eps);
      for (int64_t d = leaf.dim() - 1; d >= 0; --d) {
        if (++idx[size_t(d)] < leaf.shape()[size_t(d)]) break;
        idx[size_t(d)] = 0;
      }
    }
    std::string why = compare(analytic, numeric, {o.rtol, o.atol});
    if (!why.empty()) report += fmt::format("input {} (analytic vs numeric): {}\n", i, why);
  }
  return report;
}

Tensor randn_away_from_zero(const Shape& s, Rng& r, double min_abs) {
  std::vector<double> v(size_t(shape_numel(s)));
  for (double& e : v) {
    e = r.normal();
    if (std::abs(e) < min_abs) e = e < 0 ? e - min_abs : e + min_abs;
  }
  return from_vector(v, s, DType::f64);
}

}  // namespace rtune::test
