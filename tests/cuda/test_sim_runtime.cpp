// The runtime layer on the simulated device: copies, memset, streams and events behave like
// cudart (section 10 of docs/cuda-libs-semantics.md), and the misuse the GPU accepts silently is
// reported: copy past the end, wrong direction, use after free, double free, host dereference of
// a device pointer (a fork()ed death test), out of memory past the configured limit. Counters and
// the stand-ins' range check and access guard are checked too.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <string>
#include <thread>

#include "kernels/cuda/launch.cuh"
#include "tests/cuda/kernels_for_tests/device_buffer.h"
#include "tests/cuda/kernels_for_tests/sim_test_kernels.h"

using namespace rtune::cuda;
using testk::DeviceBuffer;

namespace {

struct Death {
  int signal = 0, exit_code = -1;
  std::string stderr_text;
};
// Runs f in a fork()ed child with stderr captured.
template <class F>
Death run_in_child(F f) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  std::fflush(nullptr);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    signal(SIGABRT, SIG_DFL);  // not the test framework's crash report
    f();
    _exit(0);
  }
  close(fds[1]);
  Death d;
  char buf[4096];
  ssize_t k;
  while ((k = read(fds[0], buf, sizeof buf)) > 0) d.stderr_text.append(buf, static_cast<size_t>(k));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) d.signal = WTERMSIG(status);
  if (WIFEXITED(status)) d.exit_code = WEXITSTATUS(status);
  return d;
}

template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const rt::CudaError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("sim runtime: device properties, counters and mem info") {
  CHECK(rt::device_count() == 1);
  auto p = rt::device_props(0);
  CHECK(p.name == "rtune simulated device");
  CHECK(p.cc_major == 9);
  CHECK(p.cc_minor == 0);
  CHECK(p.bf16);
  CHECK(p.warp_size == 32);
  CHECK_THROWS_AS(rt::device_props(1), rt::CudaError);
  CHECK_THROWS_AS(rt::set_device(3), rt::CudaError);

  auto s0 = rt::sim_memory_stats();
  CHECK(p.total_memory == s0.limit_bytes);
  rt::sim_reset_peak();
  void* a = rt::device_malloc(1000);
  void* b = rt::device_malloc(24);
  CHECK(reinterpret_cast<uintptr_t>(a) % 256 == 0);
  CHECK(reinterpret_cast<uintptr_t>(b) % 256 == 0);
  auto s1 = rt::sim_memory_stats();
  CHECK(s1.allocations == s0.allocations + 2);
  CHECK(s1.live_allocations == s0.live_allocations + 2);
  CHECK(s1.live_bytes == s0.live_bytes + 1024);
  CHECK(rt::mem_get_info().free == s1.limit_bytes - s1.live_bytes);
  rt::device_free(a);
  auto s2 = rt::sim_memory_stats();
  CHECK(s2.live_bytes == s0.live_bytes + 24);
  CHECK(s2.peak_bytes == s0.live_bytes + 1024);
  CHECK(s2.frees == s0.frees + 1);
  rt::device_free(b);
  rt::device_free(nullptr);  // no-op, like cudaFree(0)
  CHECK(rt::device_malloc(0) == nullptr);
}

// CUDA_VISIBLE_DEVICES set and empty hides every GPU from the real runtime: the simulated one too, so a
// test can run a command as a machine without a GPU does (tests/e2e/test_readme_commands.cpp).
TEST_CASE("sim runtime: CUDA_VISIBLE_DEVICES set and empty hides the device") {
  const char* was = std::getenv("CUDA_VISIBLE_DEVICES");
  const std::string saved = was ? was : "";
  ::setenv("CUDA_VISIBLE_DEVICES", "", 1);
  CHECK(rt::device_count() == 0);
  CHECK_FALSE(rt::device_present());
  ::setenv("CUDA_VISIBLE_DEVICES", "0", 1);
  CHECK(rt::device_count() == 1);
  ::unsetenv("CUDA_VISIBLE_DEVICES");
  CHECK(rt::device_count() == 1);
  if (was) ::setenv("CUDA_VISIBLE_DEVICES", saved.c_str(), 1);
}

// RTUNE_SIM_DEVICES gives several simulated GPUs; the current device is per host thread, like cudart's.
TEST_CASE("sim runtime: RTUNE_SIM_DEVICES gives several devices, the current one per host thread") {
  ::setenv("RTUNE_SIM_DEVICES", "3", 1);
  CHECK(rt::device_count() == 3);
  CHECK(rt::device_props(2).name == "rtune simulated device");
  CHECK_THROWS_AS(rt::device_props(3), rt::CudaError);
  CHECK_THROWS_AS(rt::set_device(-1), rt::CudaError);
  CHECK(rt::get_device() == 0);
  rt::set_device(2);
  int seen_by_other_thread = -1;
  std::thread([&] {
    seen_by_other_thread = rt::get_device();  // a new thread starts on device 0
    rt::set_device(1);
  }).join();
  CHECK(seen_by_other_thread == 0);
  CHECK(rt::get_device() == 2);  // untouched by the other thread's set_device
  // One arena for all devices; each allocation remembers the device current when it was made.
  void* on2 = rt::device_malloc(64);
  rt::set_device(0);
  void* on0 = rt::device_malloc(64);
  CHECK(rt::sim_allocation_device(on2) == 2);
  CHECK(rt::sim_allocation_device(static_cast<char*>(on0) + 63) == 0);
  CHECK(rt::sim_allocation_device(&seen_by_other_thread) == -1);  // host memory
  rt::device_free(on2);
  rt::device_free(on0);
  CHECK(rt::sim_allocation_device(on2) == -1);  // freed

  for (const char* bad : {"0", "17", "two", "2x", ""}) {
    ::setenv("RTUNE_SIM_DEVICES", bad, 1);
    try {
      rt::device_count();
      FAIL("RTUNE_SIM_DEVICES='" << bad << "' was accepted");
    } catch (const rtune::Error& e) {
      CHECK(std::string(e.what()).find("RTUNE_SIM_DEVICES") != std::string::npos);
    }
  }
  ::setenv("RTUNE_SIM_DEVICES", "2", 1);
  ::setenv("CUDA_VISIBLE_DEVICES", "", 1);  // still hides every device
  CHECK(rt::device_count() == 0);
  ::unsetenv("CUDA_VISIBLE_DEVICES");
  ::unsetenv("RTUNE_SIM_DEVICES");
  CHECK(rt::device_count() == 1);
  CHECK_THROWS_AS(rt::set_device(1), rt::CudaError);
}

TEST_CASE("sim runtime: round trips, device-to-device, memset, async on a stream") {
  rt::Stream s = rt::stream_create();
  for (size_t n : {1u, 3u, 257u, 100003u}) {
    CAPTURE(n);
    std::vector<unsigned char> host(n), back(n, 0), mid(n);
    std::iota(host.begin(), host.end(), 7);
    void* d1 = rt::device_malloc(n);
    void* d2 = rt::device_malloc(n);
    rt::memcpy_h2d(d1, host.data(), n);
    rt::memcpy_d2d(d2, d1, n);
    rt::memcpy_d2h(back.data(), d2, n);
    CHECK(back == host);
    rt::memset_device_async(d1, 0x1AB, n, s);  // (unsigned char)value
    rt::memcpy_d2h_async(mid.data(), d1, n, s);
    rt::stream_synchronize(s);
    CHECK(mid == std::vector<unsigned char>(n, 0xAB));
    rt::memcpy_h2d_async(d2, host.data(), n, s);
    rt::memcpy_d2d_async(d1, d2, n, s);
    rt::memcpy_d2h_async(back.data(), d1, n, s);
    rt::stream_synchronize(s);
    CHECK(back == host);
    rt::device_free(d1);
    rt::device_free(d2);
  }
  rt::stream_destroy(s);
  CHECK_THROWS_AS(rt::stream_synchronize(s), rt::CudaError);
  CHECK_THROWS_AS(rt::stream_destroy(rt::default_stream()), rt::CudaError);
}

TEST_CASE("sim runtime: new device memory is not zero (filled with NaN bytes)") {
  DeviceBuffer<float> x(10);
  for (float v : x.download()) CHECK(std::isnan(v));
}

TEST_CASE("sim runtime: events time a kernel; unrecorded and non-timing events are errors") {
  rt::Stream s = rt::stream_create();
  rt::Event a = rt::event_create(), b = rt::event_create(), c = rt::event_create(/*timing=*/false);
  DeviceBuffer<float> x(4096), y(4096);
  x.fill_bytes(0);
  y.fill_bytes(0);
  try {
    rt::event_elapsed_ms(a, b);
    FAIL("elapsed time of unrecorded events");
  } catch (const rt::CudaError& e) {
    CHECK(e.code() == 400);
  }
  rt::event_record(a, s);
  testk::axpy(x.get(), y.get(), 1.f, 4096, s);
  rt::event_record(b, s);
  rt::event_record(c, s);
  rt::event_synchronize(b);
  rt::stream_wait_event(rt::default_stream(), b);
  CHECK(rt::event_elapsed_ms(a, b) >= 0.f);
  CHECK_THROWS_AS(rt::event_elapsed_ms(a, c), rt::CudaError);
  rt::event_destroy(a);
  CHECK_THROWS_AS(rt::event_record(a, s), rt::CudaError);
  rt::event_destroy(b);
  rt::event_destroy(c);
  rt::stream_destroy(s);
  rt::device_synchronize();
}

TEST_CASE("sim runtime: copy past the end, wrong direction, use after free, bad frees are reported") {
  std::vector<float> host(100, 1.f);
  float* d = static_cast<float*>(rt::device_malloc(64 * sizeof(float)));
  float* other = static_cast<float*>(rt::device_malloc(64 * sizeof(float)));

  CHECK(error_of([&] { rt::memcpy_h2d(d, host.data(), 65 * sizeof(float)); }).find("past the end") != std::string::npos);
  CHECK(error_of([&] { rt::memcpy_d2h(host.data(), d + 1, 64 * sizeof(float)); }).find("past the end") !=
        std::string::npos);
  CHECK(error_of([&] { rt::memset_device(d + 60, 0, 5 * sizeof(float)); }).find("past the end") != std::string::npos);
  // direction: host->device with a device source, and with a host destination
  CHECK(error_of([&] { rt::memcpy_h2d(d, other, 16); }).find("wrong copy direction") != std::string::npos);
  CHECK(error_of([&] { rt::memcpy_h2d(host.data(), host.data() + 50, 16); }).find("wrong copy direction") !=
        std::string::npos);
  CHECK(error_of([&] { rt::memcpy_d2h(other, d, 16); }).find("wrong copy direction") != std::string::npos);
  CHECK(error_of([&] { rt::memcpy_d2d(d, host.data(), 16); }).find("wrong copy direction") != std::string::npos);
  CHECK(error_of([&] { rt::memcpy_d2d(d, d + 2, 16); }).find("overlap") != std::string::npos);

  rt::device_free(other);
  CHECK(error_of([&] { rt::memcpy_d2h(host.data(), other, 16); }).find("use after free") != std::string::npos);
  CHECK(error_of([&] { rt::memcpy_h2d(other + 3, host.data(), 4); }).find("use after free") != std::string::npos);
  CHECK(error_of([&] { rt::device_free(other); }).find("double free") != std::string::npos);
  CHECK(error_of([&] { rt::device_free(d + 1); }).find("not the start of a live device allocation") !=
        std::string::npos);
  CHECK(error_of([&] { rt::device_free(host.data()); }).find("not a device pointer") != std::string::npos);
  CHECK(error_of([&] { rt::pinned_free(host.data()); }).find("not a live allocation") != std::string::npos);
  rt::device_free(d);
}

TEST_CASE("sim runtime: stand-in range check and access guard") {
  float* d = static_cast<float*>(rt::device_malloc(10 * sizeof(float)));
  rt::memset_device(d, 0, 10 * sizeof(float));
  rt::sim_check_device_range(d, 10 * sizeof(float), "standin");
  rt::sim_check_device_range(d + 10, 0, "standin");  // an empty range at the end is fine
  CHECK_THROWS_WITH_AS(rt::sim_check_device_range(d + 5, 6 * sizeof(float), "cudnnConvolutionForward y"),
                       doctest::Contains("cudnnConvolutionForward y"), rt::CudaError);
  float host = 0.f;
  CHECK_THROWS_AS(rt::sim_check_device_range(&host, 4, "standin"), rt::CudaError);
  CHECK(rt::sim_is_device_address(d));
  CHECK_FALSE(rt::sim_is_device_address(&host));
  {
    rt::SimDeviceAccess outer;
    {
      rt::SimDeviceAccess inner;  // nests
      d[3] = 42.f;
    }
    CHECK(d[3] == 42.f);  // still open: the outer guard is alive
  }
  float back[10];
  rt::memcpy_d2h(back, d, sizeof back);
  CHECK(back[3] == 42.f);
  rt::device_free(d);
  CHECK_THROWS_WITH_AS(rt::sim_check_device_range(d, 4, "standin"), doctest::Contains("use after free"),
                       rt::CudaError);
}

TEST_CASE("sim runtime: whole-device guard opens allocations on first touch, from any thread") {
  std::vector<float*> bufs;
  for (int i = 0; i < 4; ++i) {
    bufs.push_back(static_cast<float*>(rt::device_malloc((1000 + 3000 * size_t(i)) * sizeof(float))));
    rt::memset_device(bufs.back(), 0, (1000 + 3000 * size_t(i)) * sizeof(float));
  }
  {
    rt::SimDeviceAccess g;
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; ++i)
      ts.emplace_back([&, i] {
        for (size_t k = 0; k < 1000 + 3000 * size_t(i); ++k) bufs[size_t(i)][k] += float(i + 1);
      });
    for (auto& t : ts) t.join();
  }
  for (int i = 0; i < 4; ++i) {
    std::vector<float> h(1000 + 3000 * size_t(i));
    rt::memcpy_d2h(h.data(), bufs[size_t(i)], h.size() * sizeof(float));
    CHECK(h == std::vector<float>(h.size(), float(i + 1)));
  }
  float* gone = bufs.back();
  rt::device_free(gone);
  Death r = run_in_child([&] {
    rt::SimDeviceAccess g;
    volatile float v = gone[2000];  // freed: not opened even under the guard
    (void)v;
  });
  CHECK(r.exit_code != 0);
  for (int i = 0; i < 3; ++i) rt::device_free(bufs[size_t(i)]);
}

TEST_CASE("sim runtime: ranged access guard and access until the next runtime call") {
  float* a = static_cast<float*>(rt::device_malloc(3000 * sizeof(float)));  // spans pages
  float* b = static_cast<float*>(rt::device_malloc(4 * 4096));             // its middle pages are its own
  rt::memset_device(a, 0, 3000 * sizeof(float));
  {
    rt::SimDeviceAccess g({a, nullptr}, "test guard");  // null is ignored
    a[0] = 1.f;
    a[2999] = 2.f;
  }
  void* gone = rt::device_malloc(64);
  rt::device_free(gone);
  CHECK_THROWS_WITH_AS(rt::SimDeviceAccess({a, gone}, "test guard"), doctest::Contains("use after free"), rt::CudaError);
  Death only_a = run_in_child([&] {
    rt::SimDeviceAccess g({a}, "test guard");
    b[2048] = 3.f;  // not named by the guard; a page b shares with no one
  });
  CHECK(only_a.signal == SIGABRT);
  CHECK(only_a.stderr_text.find("host code dereferenced device memory") != std::string::npos);
  rt::sim_access_until_next_call(a, 3000 * sizeof(float), "validator");
  CHECK(a[2999] == 2.f);  // open until the next runtime call
  Death after = run_in_child([&] {
    rt::stream_synchronize(rt::default_stream());  // a runtime call closes it
    volatile float v = a[100];
    (void)v;
  });
  CHECK(after.signal == SIGABRT);
  CHECK_THROWS_AS(rt::sim_access_until_next_call(a, 3001 * sizeof(float), "validator"), rt::CudaError);
  rt::device_free(a);
  rt::device_free(b);
}

TEST_CASE("sim runtime: kernel arguments are checked and bound what a kernel may touch") {
  float* x = static_cast<float*>(rt::device_malloc(4096 * sizeof(float)));
  float* y = static_cast<float*>(rt::device_malloc(4096 * sizeof(float)));
  rt::device_free(y);
  CHECK_THROWS_WITH_AS(testk::axpy(x, y, 1.f, 4096, rt::default_stream()), doctest::Contains("use after free"),
                       rt::CudaError);
  // A pointer inside a struct argument is found.
  std::vector<float> ones(4096, 1.f);
  rt::memcpy_h2d(x, ones.data(), 4096 * sizeof(float));
  testk::scale_span({x, 4096}, 3.f, rt::default_stream());
  std::vector<float> back(4096);
  rt::memcpy_d2h(back.data(), x, 4096 * sizeof(float));
  CHECK(back == std::vector<float>(4096, 3.f));
  // A pointer fetched from device memory reaches an allocation no argument names: reported.
  float* hidden = static_cast<float*>(rt::device_malloc(64 * 1024));
  float** table = static_cast<float**>(rt::device_malloc(sizeof(float*)));
  float* middle = hidden + 8192;  // a page of `hidden` no neighbour shares
  rt::memcpy_h2d(table, &middle, sizeof middle);
  Death r = run_in_child([&] { testk::load_through_table(table, x, rt::default_stream()); });
  CHECK(r.signal == SIGABRT);
  CHECK(r.stderr_text.find("a kernel touched device memory") != std::string::npos);
  rt::device_free(table);
  rt::device_free(hidden);
  rt::device_free(x);
}

TEST_CASE("sim runtime: host dereference of a device pointer aborts with a message") {
  float* d = static_cast<float*>(rt::device_malloc(256));
  rt::memset_device(d, 0, 256);
  Death r = run_in_child([&] {
    volatile float v = d[7];  // outside any kernel or guard
    (void)v;
  });
  CHECK(r.signal == SIGABRT);
  CHECK(r.stderr_text.find("host code dereferenced device memory") != std::string::npos);
  CHECK(r.stderr_text.find("live device allocation") != std::string::npos);
  rt::device_free(d);
  Death w = run_in_child([&] { d[0] = 1.f; });  // a write after free
#if defined(__SANITIZE_ADDRESS__)
  // ASan sees the freed (poisoned) block before the access faults.
  CHECK(w.exit_code != 0);
  CHECK(w.stderr_text.find("AddressSanitizer: use-after-poison") != std::string::npos);
#else
  CHECK(w.signal == SIGABRT);
  CHECK(w.stderr_text.find("FREED device allocation") != std::string::npos);
#endif
}

#if defined(__SANITIZE_ADDRESS__)
TEST_CASE("sim runtime: under ASan a kernel writing one past an allocation is caught") {
  float* d = static_cast<float*>(rt::device_malloc(1000 * sizeof(float)));
  Death r = run_in_child([&] { testk::write_one_past(d, 1000, rt::default_stream()); });
  CHECK(r.exit_code != 0);
  CHECK(r.stderr_text.find("AddressSanitizer") != std::string::npos);
  rt::device_free(d);
}
#endif

TEST_CASE("sim runtime: out of memory past the configured limit") {
  const auto before = rt::sim_memory_stats();
  rt::sim_set_memory_limit(before.live_bytes + (1 << 20));
  void* ok = rt::device_malloc(512 << 10);
  try {
    rt::device_malloc(768 << 10);
    FAIL("allocated past the limit");
  } catch (const rt::CudaOutOfMemory& e) {
    CHECK(e.code() == 2);
    CHECK(e.requested() == size_t(768 << 10));
    CHECK(std::string(e.what()).find("out of memory") != std::string::npos);
  }
  CHECK(rt::sim_memory_stats().live_bytes == before.live_bytes + (512 << 10));
  CHECK_THROWS_AS(rt::sim_set_memory_limit(before.live_bytes), rtune::Error);  // below what is in use
  rt::device_free(ok);
  rt::sim_set_memory_limit(before.limit_bytes);
  void* big = rt::device_malloc(768 << 10);  // fits again
  rt::device_free(big);
}

TEST_CASE("sim runtime: pinned memory") {
  auto* p = static_cast<float*>(rt::pinned_malloc(1000 * sizeof(float)));
  for (int i = 0; i < 1000; ++i) p[i] = float(i);
  DeviceBuffer<float> d(1000);
  rt::memcpy_h2d(d.get(), p, 1000 * sizeof(float));
  CHECK(d.download()[999] == 999.f);
  rt::pinned_free(p);
}
