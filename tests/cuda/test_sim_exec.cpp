// The simulated device's execution model: grid-stride kernels, __shared__ block reductions with
// real barriers under shuffled thread orders (a dropped barrier must be caught), atomics across
// blocks, dynamic shared memory, built-in indices, launch configuration errors and divergent
// barriers. Reference values are computed on the host in the test.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include "kernels/cuda/launch.cuh"
#include "tests/cuda/kernels_for_tests/device_buffer.h"
#include "tests/cuda/kernels_for_tests/sim_test_kernels.h"

using namespace rtune::cuda;
using testk::DeviceBuffer;

namespace {

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}
// Small integers as floats: every partial sum is exact, so any order gives the same float.
std::vector<float> integer_floats(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = float(int(g() % 201) - 100);
  return v;
}

}  // namespace

TEST_CASE("sim exec: grid-stride axpy over odd sizes, including more elements than the grid covers") {
  for (int64_t n : {1, 7, 255, 257, 1000, 40001}) {
    CAPTURE(n);
    auto x = random_floats(static_cast<size_t>(n), 1), y = random_floats(static_cast<size_t>(n), 2);
    DeviceBuffer<float> dx(x), dy(y);
    testk::axpy(dx.get(), dy.get(), 0.5f, n, rt::default_stream());
    auto got = dy.download();
    size_t worst = 0;
    float worst_err = 0.f;
    for (size_t i = 0; i < got.size(); ++i) {
      float err = std::fabs(got[i] - (0.5f * x[i] + y[i]));
      if (err > worst_err) { worst_err = err; worst = i; }
    }
    INFO("worst element " << worst << ": got " << got[worst] << " want " << 0.5f * x[worst] + y[worst]);
    CHECK(worst_err == 0.f);
  }
}

TEST_CASE("sim exec: 256-thread __shared__ reduction is right under many thread orders") {
  const int64_t n = 256 * 9 + 77;  // 10 blocks, the last one partial
  auto x = integer_floats(static_cast<size_t>(n), 3);
  std::vector<float> want(10, 0.f);
  for (int64_t i = 0; i < n; ++i) want[size_t(i / 256)] += x[static_cast<size_t>(i)];
  DeviceBuffer<float> dx(x), out(10);
  for (uint64_t seed = 1; seed <= 25; ++seed) {
    CAPTURE(seed);
    sim::set_seed(seed);
    out.fill_bytes(0xFF);
    testk::block_sums(dx.get(), out.get(), n, /*drop_barrier=*/false, rt::default_stream());
    CHECK(out.download() == want);
  }
}

TEST_CASE("sim exec: the same reduction without its first barrier gives a wrong sum for some seed") {
  const int64_t n = 256 * 8;
  auto x = integer_floats(static_cast<size_t>(n), 4);
  std::vector<float> want(8, 0.f);
  for (int64_t i = 0; i < n; ++i) want[size_t(i / 256)] += x[static_cast<size_t>(i)];
  DeviceBuffer<float> dx(x), out(8);
  int wrong = 0;
  const int seeds = 20;
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    sim::set_seed(seed);
    testk::block_sums(dx.get(), out.get(), n, /*drop_barrier=*/true, rt::default_stream());
    wrong += out.download() != want;
  }
  MESSAGE("missing barrier: wrong result for " << wrong << " of " << seeds << " seeds");
  CHECK(wrong > 0);
}

TEST_CASE("sim exec: atomics from many blocks") {
  const int64_t n = 20011;
  const int bins = 13;
  std::vector<int> v(static_cast<size_t>(n));
  std::mt19937 g(5);
  for (auto& x : v) x = int(g() % 1000);
  DeviceBuffer<int> dv(v), hist(static_cast<size_t>(bins)), maxv(1), csum(1);
  DeviceBuffer<unsigned long long> total(1);
  DeviceBuffer<float> fsum(1);
  hist.fill_bytes(0);
  total.fill_bytes(0);
  fsum.fill_bytes(0);
  csum.fill_bytes(0);
  maxv.upload({-1});
  testk::atomics(dv.get(), n, hist.get(), bins, total.get(), maxv.get(), fsum.get(), csum.get(), rt::default_stream());
  std::vector<int> want_hist(static_cast<size_t>(bins), 0);
  long long want_total = 0;
  for (int x : v) { ++want_hist[size_t(x % bins)]; want_total += x; }
  CHECK(hist.download() == want_hist);
  CHECK(total.download()[0] == (unsigned long long)want_total);
  CHECK(maxv.download()[0] == *std::max_element(v.begin(), v.end()));
  CHECK(csum.download()[0] == want_total);
  // float atomics accumulate in a schedule-dependent order: relative 1e-6 of the total
  CHECK(std::fabs(fsum.download()[0] - float(want_total)) <= 1e-6 * double(want_total) + 1.0);
}

TEST_CASE("sim exec: dynamic shared memory (per block, uninitialised = NaN)") {
  for (int block : {32, 100, 256}) {
    const int64_t n = 3 * block + block / 3;  // last block partial
    CAPTURE(block);
    auto x = random_floats(static_cast<size_t>(n), 6);
    DeviceBuffer<float> dx(x), dy(static_cast<size_t>(n));
    dy.fill_bytes(0xFF);
    testk::reverse_blocks(dx.get(), dy.get(), n, block, rt::default_stream());
    std::vector<float> want(static_cast<size_t>(n));
    for (int64_t b0 = 0; b0 < n; b0 += block) {
      int64_t len = std::min<int64_t>(block, n - b0);
      for (int64_t t = 0; t < len; ++t) want[size_t(b0 + t)] = x[size_t(b0 + len - 1 - t)];
    }
    CHECK(dy.download() == want);
  }
}

TEST_CASE("sim exec: built-in indices of a 2D grid of 3D blocks") {
  const int gx = 3, gy = 2, bx = 5, by = 3, bz = 2, total = gx * gy * bx * by * bz;
  DeviceBuffer<int> out(static_cast<size_t>(total));
  out.fill_bytes(0xFF);
  testk::index_3d(out.get(), gx, gy, bx, by, bz, rt::default_stream());
  std::vector<int> want(static_cast<size_t>(total));
  std::iota(want.begin(), want.end(), 0);
  CHECK(out.download() == want);
}

TEST_CASE("sim exec: divergent barriers and bad launches are reported") {
  DeviceBuffer<float> x(64);
  CHECK_THROWS_WITH_AS(testk::divergent_barrier(x.get(), rt::default_stream()),
                       doctest::Contains("divergent barrier"), rtune::Error);
  CHECK_THROWS_WITH_AS(testk::split_barriers(x.get(), rt::default_stream()),
                       doctest::Contains("different __syncthreads() calls"), rtune::Error);
  // The device works normally after a failed launch.
  DeviceBuffer<float> y(100);
  y.fill_bytes(0);
  testk::axpy(y.get(), y.get(), 1.f, 100, rt::default_stream());
  CHECK(y.download() == std::vector<float>(100, 0.f));

  try {
    testk::reverse_blocks(x.get(), x.get(), 64, 2048, rt::default_stream());
    FAIL("a 2048-thread block launched");
  } catch (const rt::CudaError& e) {
    CHECK(e.code() == 9);  // cudaErrorInvalidConfiguration
  }
  rt::Stream s = rt::stream_create();
  rt::stream_destroy(s);
  CHECK_THROWS_AS(testk::axpy(y.get(), y.get(), 1.f, 100, s), rt::CudaError);
}

TEST_CASE("sim exec: a stack overflow in a simulated thread is named") {
  DeviceBuffer<int> out(1);
  testk::deep_recursion(out.get(), 10, rt::default_stream());  // shallow: fine
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  std::fflush(nullptr);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    signal(SIGABRT, SIG_DFL);
    testk::deep_recursion(out.get(), 100000, rt::default_stream());  // ~100 MB of frames
    _exit(0);
  }
  close(fds[1]);
  std::string err;
  char buf[4096];
  ssize_t k;
  while ((k = read(fds[0], buf, sizeof buf)) > 0) err.append(buf, static_cast<size_t>(k));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFSIGNALED(status));
  CHECK(err.find("stack overflow in a simulated GPU thread") != std::string::npos);
}

TEST_CASE("sim exec: timing of a barrier-free kernel and of a barrier kernel") {
  const int64_t n = 1 << 18;
  DeviceBuffer<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n)), out(size_t(n / 256));
  x.fill_bytes(0);
  y.fill_bytes(0);
  auto t0 = std::chrono::steady_clock::now();
  testk::axpy(x.get(), y.get(), 2.f, n, rt::default_stream());
  auto t1 = std::chrono::steady_clock::now();
  testk::block_sums(x.get(), out.get(), n, false, rt::default_stream());
  auto t2 = std::chrono::steady_clock::now();
  auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
  MESSAGE("axpy n=2^18 (" << grid_for(n, 256).x * 256 << " threads): " << ms(t0, t1) << " ms; block_sums "
                          << n / 256 << " blocks x 256 threads x 9 barriers: " << ms(t1, t2) << " ms");
  CHECK(out.download() == std::vector<float>(size_t(n / 256), 0.f));
}
