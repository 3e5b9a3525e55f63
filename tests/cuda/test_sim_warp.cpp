// Warp intrinsics of the simulated device: a __shfl_down_sync reduction with atomicAdd per warp
// (full and partial block sizes), __shfl_xor_sync all-reduce, __ballot_sync, width-8 segments of
// __shfl_sync / __shfl_up_sync (PTX shfl.sync rules), and a read outside the mask reported.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "kernels/cuda/launch.cuh"
#include "tests/cuda/kernels_for_tests/device_buffer.h"
#include "tests/cuda/kernels_for_tests/sim_test_kernels.h"

using namespace rtune::cuda;
using testk::DeviceBuffer;

TEST_CASE("sim warp: shuffle-down reduction + atomicAdd per warp") {
  for (int64_t n : {1, 31, 32, 1000, 65537}) {
    CAPTURE(n);
    std::vector<float> x(static_cast<size_t>(n));
    std::mt19937 g{static_cast<unsigned>(n)};
    for (auto& v : x) v = float(int(g() % 21) - 10);  // exact in any order
    double want = 0;
    for (float v : x) want += v;
    DeviceBuffer<float> dx(x), out(1);
    for (uint64_t seed : {1, 2, 3}) {
      sim::set_seed(seed);
      out.fill_bytes(0);
      testk::warp_sum(dx.get(), out.get(), n, 128, rt::default_stream());
      CHECK(out.download()[0] == float(want));
    }
  }
}

TEST_CASE("sim warp: xor butterfly gives every lane the warp total") {
  const int64_t n = 32 * 9;
  std::vector<double> x(static_cast<size_t>(n));
  std::mt19937 g(7);
  for (auto& v : x) v = double(g() % 1000) / 8.0;
  DeviceBuffer<double> dx(x), out(static_cast<size_t>(n));
  out.fill_bytes(0xFF);
  testk::warp_allreduce(dx.get(), out.get(), n, rt::default_stream());
  auto got = out.download();
  for (int64_t w = 0; w < n / 32; ++w) {
    double want = 0;
    for (int l = 0; l < 32; ++l) want += x[size_t(w * 32 + l)];
    for (int l = 0; l < 32; ++l) {
      INFO("warp " << w << " lane " << l);
      CHECK(got[size_t(w * 32 + l)] == want);
    }
  }
}

TEST_CASE("sim warp: ballot") {
  const int64_t n = 32 * 6;
  std::vector<float> x(static_cast<size_t>(n));
  std::mt19937 g(8);
  for (auto& v : x) v = float(int(g() % 3) - 1);
  DeviceBuffer<float> dx(x);
  DeviceBuffer<unsigned> out(size_t(n / 32));
  testk::warp_ballot(dx.get(), out.get(), n, rt::default_stream());
  auto got = out.download();
  for (int64_t w = 0; w < n / 32; ++w) {
    unsigned want = 0;
    for (int l = 0; l < 32; ++l) want |= unsigned(x[size_t(w * 32 + l)] > 0.f) << l;
    CHECK(got[static_cast<size_t>(w)] == want);
  }
}

TEST_CASE("sim warp: __shfl_sync / __shfl_up_sync with width 8") {
  const int64_t n = 64;
  std::vector<int> x(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) x[static_cast<size_t>(i)] = 1000 + i;
  DeviceBuffer<int> dx(x), idx(static_cast<size_t>(n)), up(static_cast<size_t>(n));
  testk::warp_segments(dx.get(), idx.get(), up.get(), n, rt::default_stream());
  auto gi = idx.download(), gu = up.download();
  for (int i = 0; i < n; ++i) {
    const int lane = i % 32, seg = lane & ~7, warp0 = i - lane;
    CAPTURE(i);
    CHECK(gi[static_cast<size_t>(i)] == x[size_t(warp0 + seg + ((lane ^ 1) % 8))]);
    CHECK(gu[static_cast<size_t>(i)] == (lane % 8 == 0 ? x[static_cast<size_t>(i)] : x[size_t(i - 1)]));
  }
}

TEST_CASE("sim warp: a shuffle that reads a lane outside its mask is reported") {
  DeviceBuffer<float> x(32);
  x.fill_bytes(0);
  CHECK_THROWS_WITH_AS(testk::shuffle_outside_mask(x.get(), rt::default_stream()),
                       doctest::Contains("is not in the mask"), rtune::Error);
}
