// Shared test helpers: element-wise closeness with |a-b| <= atol + rtol*|ref| reporting the worst
// element, fixture paths, and the float64 central-difference gradient checker.
#pragma once
#include <doctest/doctest.h>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>
#include "engine/tensor.h"
#include "engine/random_tensor.h"

namespace rtune::test {

// The source tree: the environment's RTUNE_SOURCE_DIR when set (a test binary carried to another machine,
// bench/gpu.sh), else the one it was built from.
inline std::string source_dir() {
  const char* env = std::getenv("RTUNE_SOURCE_DIR");
  return env && *env ? std::string(env) : std::string(RTUNE_SOURCE_DIR);
}
inline std::string fixture(const std::string& name) { return source_dir() + "/tests/fixtures/" + name; }

// A fresh empty folder under the system temp dir, unique to this process and object, removed with it.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// The message of the rtune::Error `f` throws; "" when it throws none.
std::string error_of(const std::function<void()>& f);

struct Tol {
  double rtol = 1e-6, atol = 1e-9;
};

// Empty string when every element is close; else a message naming the worst element.
std::string compare(const std::vector<double>& got, const std::vector<double>& ref, Tol tol);
std::string compare(const Tensor& got, const Tensor& ref, Tol tol);

#define CHECK_CLOSE(got, ref, ...)                                              \
  do {                                                                          \
    std::string why_ = ::rtune::test::compare((got), (ref), ::rtune::test::Tol{__VA_ARGS__}); \
    CHECK_MESSAGE(why_.empty(), why_);                                          \
  } while (0)

// Central differences in float64 with eps = 1e-6 carry about 1e-16·|loss|/eps ≈ 1e-10·|loss| of
// rounding noise; the losses here are O(1–100), hence atol 1e-7.
struct GradcheckOptions {
  double eps = 1e-6, rtol = 1e-6, atol = 1e-7;
};

// Checks d(sum(f(inputs) * probe))/d(input) from autograd against central differences for every input
// listed in `check` (all float64 CPU, contiguous). The probe is random, so symmetric errors cannot cancel.
// Returns "" on success, or the worst element of the worst input.
std::string gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> inputs,
                      const std::vector<bool>& check, uint64_t seed, GradcheckOptions o = {});

#define CHECK_GRADCHECK(...)                                    \
  do {                                                          \
    std::string why_ = ::rtune::test::gradcheck(__VA_ARGS__);   \
    CHECK_MESSAGE(why_.empty(), why_);                          \
  } while (0)

// A float64 tensor of N(0,1) values with magnitude at least `min_abs` (away from ReLU/max kinks).
Tensor randn_away_from_zero(const Shape& s, Rng& r, double min_abs = 0.05);

}  // namespace rtune::test
