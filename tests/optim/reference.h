// Shared by the optim tests: the PyTorch reference JSON and a per-element closeness check that reports
// the worst element (|a - b| <= atol + rtol * |ref|).
#pragma once
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include "tests/core/test_util.h"

namespace rtune::test {

inline const nlohmann::json& training_reference() {
  static const nlohmann::json j = [] {
    std::ifstream f(fixture("training_reference.json"));
    REQUIRE_MESSAGE(f.good(), "missing tests/fixtures/training_reference.json");
    return nlohmann::json::parse(f);
  }();
  return j;
}

struct Closeness {
  bool ok = true;
  size_t worst = 0;
  double got = 0, ref = 0, excess = -INFINITY;  // excess = |a-b| - (atol + rtol|ref|), worst one
  std::string describe(const std::string& what) const {
    return fmt::format("{}: worst element [{}] got {:.17g} ref {:.17g} (|diff| {:.3g}, over tolerance by {:.3g})",
                       what, worst, got, ref, std::abs(got - ref), excess);
  }
};

template <class A, class B>
Closeness compare(const A& got, const B& ref, double atol, double rtol) {
  Closeness c;
  REQUIRE(got.size() == ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    const double a = double(got[i]), b = double(ref[i]);
    const double ex = (a == b) ? -INFINITY : std::abs(a - b) - (atol + rtol * std::abs(b));
    if (ex > c.excess || std::isnan(ex) || (i == 0 && c.excess == -INFINITY)) {
      c.excess = std::isnan(ex) ? INFINITY : ex;
      c.worst = i, c.got = a, c.ref = b;
    }
  }
  c.ok = c.excess <= 0;
  return c;
}

// RTUNE_TEST_VERBOSE=1 prints the worst element of every comparison (for measuring margins).
inline bool verbose() {
  static const bool v = std::getenv("RTUNE_TEST_VERBOSE") != nullptr;
  return v;
}

#define CHECK_CLOSE_VEC(got, ref, atol, rtol, what)                                  \
  do {                                                                               \
    const auto _c = ::rtune::test::compare((got), (ref), (atol), (rtol));            \
    if (::rtune::test::verbose()) fmt::print("{}\n", _c.describe(what));            \
    CHECK_MESSAGE(_c.ok, _c.describe(what));                                         \
  } while (0)

}  // namespace rtune::test
