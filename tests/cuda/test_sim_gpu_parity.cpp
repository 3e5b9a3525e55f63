// The simulated-device test kernels on a real GPU (RTUNE_CUDA build): the results the simulator
// tests expect must also be what the hardware gives, so the execution model matches CUDA's.
// Exits 77 (skipped) when no GPU is present; in CI it only has to compile and link.
#include <doctest/doctest.h>

#include <cstdlib>
#include <numeric>
#include <random>

#include "tests/cuda/kernels_for_tests/device_buffer.h"
#include "tests/cuda/kernels_for_tests/sim_test_kernels.h"

using namespace rtune::cuda;
using testk::DeviceBuffer;

namespace {
void skip_without_gpu() {
  if (!rt::device_present()) {
    MESSAGE("no CUDA device: skipped");
    std::exit(77);
  }
}
}  // namespace

TEST_CASE("gpu parity: axpy, block reduction, warp reduction, ballot, segments") {
  skip_without_gpu();
  rt::Stream s = rt::stream_create();
  const int64_t n = 256 * 9 + 77;
  std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
  std::mt19937 g(3);
  for (auto& v : x) v = float(int(g() % 201) - 100);
  for (auto& v : y) v = float(int(g() % 201) - 100);
  DeviceBuffer<float> dx(x), dy(y), sums(10), total(1);
  testk::axpy(dx.get(), dy.get(), 2.f, n, s);
  testk::block_sums(dx.get(), sums.get(), n, false, s);
  total.fill_bytes(0);
  testk::warp_sum(dx.get(), total.get(), n, 128, s);
  rt::stream_synchronize(s);
  auto gy = dy.download(), gs = sums.download();
  std::vector<float> want_s(10, 0.f);
  double want_total = 0;
  for (int64_t i = 0; i < n; ++i) {
    CHECK(gy[static_cast<size_t>(i)] == 2.f * x[static_cast<size_t>(i)] + y[static_cast<size_t>(i)]);
    want_s[static_cast<size_t>(i / 256)] += x[static_cast<size_t>(i)];
    want_total += x[static_cast<size_t>(i)];
  }
  CHECK(gs == want_s);
  CHECK(total.download()[0] == float(want_total));

  const int64_t m = 64;
  std::vector<int> xi(static_cast<size_t>(m));
  std::iota(xi.begin(), xi.end(), 1000);
  DeviceBuffer<int> dxi(xi), idx(static_cast<size_t>(m)), up(static_cast<size_t>(m));
  testk::warp_segments(dxi.get(), idx.get(), up.get(), m, s);
  rt::stream_synchronize(s);
  auto gi = idx.download(), gu = up.download();
  for (int i = 0; i < m; ++i) {
    const int lane = i % 32, seg = lane & ~7, warp0 = i - lane;
    CHECK(gi[static_cast<size_t>(i)] == xi[static_cast<size_t>(warp0 + seg + ((lane ^ 1) % 8))]);
    CHECK(gu[static_cast<size_t>(i)] == (lane % 8 == 0 ? xi[static_cast<size_t>(i)] : xi[static_cast<size_t>(i - 1)]));
  }
  rt::stream_destroy(s);
}

TEST_CASE("gpu parity: dynamic shared memory and 3D indices") {
  skip_without_gpu();
  const int block = 100;
  const int64_t n = 3 * block + 33;
  std::vector<float> x(static_cast<size_t>(n));
  std::iota(x.begin(), x.end(), 0.f);
  DeviceBuffer<float> dx(x), dy(static_cast<size_t>(n));
  testk::reverse_blocks(dx.get(), dy.get(), n, block, rt::default_stream());
  std::vector<float> want(static_cast<size_t>(n));
  for (int64_t b0 = 0; b0 < n; b0 += block) {
    int64_t len = std::min<int64_t>(block, n - b0);
    for (int64_t t = 0; t < len; ++t) want[static_cast<size_t>(b0 + t)] = x[static_cast<size_t>(b0 + len - 1 - t)];
  }
  CHECK(dy.download() == want);
  DeviceBuffer<int> out(3 * 2 * 5 * 3 * 2);
  testk::index_3d(out.get(), 3, 2, 5, 3, 2, rt::default_stream());
  std::vector<int> ids(out.size());
  std::iota(ids.begin(), ids.end(), 0);
  CHECK(out.download() == ids);
}
