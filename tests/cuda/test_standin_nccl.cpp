// NCCL stand-in: ranks as threads on several simulated GPUs and as fork()ed processes; all-reduce sums
// in rank order, bitwise equal on every rank (f32, f64, bf16, avg, in place, more than one staging
// chunk), broadcast; and the failures real NCCL would turn into a hang: ranks issuing different
// collectives, a peer that never arrives (timeout), a peer process that exited, bad arguments.
#include <doctest/doctest.h>
#include <nccl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "kernels/cuda/runtime.h"
#include "kernels/cuda/sim/call_log.h"
#include "kernels/cuda/sim/standin.h"
#include "tests/cuda/kernels_for_tests/device_buffer.h"

namespace rt = rtune::cuda::rt;
using rtune::cuda::testk::DeviceBuffer;

namespace {

// What rtune's CUDA backend installs at start-up: every buffer a stand-in touches must be a live
// device allocation.
void install_validator() {
  rtune::sim::set_device_pointer_validator(
      [](const void* p, size_t n, const char* what) { rt::sim_check_device_range(p, n, what); });
}

ncclUniqueId make_id() {
  ncclUniqueId id;
  REQUIRE(ncclGetUniqueId(&id) == ncclSuccess);
  return id;
}

struct RankResult {
  ncclResult_t init = ncclInternalError, call = ncclInternalError;
  std::string message;
  std::vector<uint8_t> bytes;  // what the rank's recvbuff held afterwards
};

// Runs nranks threads, each on its own simulated GPU (rank r on device r), each joining one
// communicator and running body(rank, comm, result).
std::vector<RankResult> run_threads(int nranks, const std::function<void(int, ncclComm_t, RankResult&)>& body) {
  install_validator();
  ::setenv("RTUNE_SIM_DEVICES", "4", 1);
  const ncclUniqueId id = make_id();
  std::vector<RankResult> out(static_cast<size_t>(nranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < nranks; ++r)
    threads.emplace_back([&, r] {
      rt::set_device(r);
      ncclComm_t comm = nullptr;
      RankResult& res = out[size_t(r)];
      res.init = ncclCommInitRank(&comm, nranks, id, r);
      if (res.init != ncclSuccess) {
        res.message = ncclGetLastError(nullptr);
        return;
      }
      body(r, comm, res);
      ncclCommDestroy(comm);
    });
  for (auto& t : threads) t.join();
  return out;
}

template <class T>
std::vector<uint8_t> bytes_of(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// One all-reduce of `mine(rank)` on each rank; the result's bytes per rank.
template <class T>
std::vector<RankResult> allreduce_threads(int nranks, ncclDataType_t type, ncclRedOp_t op,
                                          const std::function<std::vector<T>(int)>& mine, bool in_place = false) {
  return run_threads(nranks, [&](int r, ncclComm_t comm, RankResult& res) {
    const std::vector<T> host = mine(r);
    DeviceBuffer<T> send(host), recv(host.size());
    recv.fill_bytes(0xff);  // NaN: an element never written fails
    T* dst = in_place ? send.get() : recv.get();
    res.call = ncclAllReduce(send.get(), dst, host.size(), type, op, comm, nullptr);
    if (res.call != ncclSuccess) res.message = ncclGetLastError(comm);
    res.bytes = bytes_of(in_place ? send.download() : recv.download());
  });
}

void check_all_equal(const std::vector<RankResult>& rs, const std::vector<uint8_t>& expected) {
  for (size_t r = 0; r < rs.size(); ++r) {
    CAPTURE(r);
    CHECK(rs[r].init == ncclSuccess);
    CHECK(rs[r].call == ncclSuccess);
    CHECK(rs[r].message == "");
    CHECK(rs[r].bytes == expected);  // bitwise, on every rank
  }
}

}  // namespace

TEST_CASE("nccl: version, unique id, comm queries on a one-rank communicator") {
  install_validator();
  int v = 0;
  CHECK(ncclGetVersion(&v) == ncclSuccess);
  CHECK(v == NCCL_VERSION_CODE);
  ncclComm_t comm = nullptr;
  REQUIRE(ncclCommInitRank(&comm, 1, make_id(), 0) == ncclSuccess);
  int n = 0, rank = -1, dev = -1;
  CHECK(ncclCommCount(comm, &n) == ncclSuccess);
  CHECK(ncclCommUserRank(comm, &rank) == ncclSuccess);
  CHECK(ncclCommCuDevice(comm, &dev) == ncclSuccess);
  CHECK((n == 1 && rank == 0 && dev == 0));
  ncclResult_t async = ncclInternalError;
  CHECK(ncclCommGetAsyncError(comm, &async) == ncclSuccess);
  CHECK(async == ncclSuccess);
  CHECK(std::string(ncclGetErrorString(ncclRemoteError)).find("remote process exited") != std::string::npos);
  CHECK(ncclCommDestroy(comm) == ncclSuccess);
  CHECK(ncclCommCount(comm, &n) == ncclInvalidArgument);  // destroyed handle
}

TEST_CASE("nccl: f32 sum over 2 and 3 ranks (threads on simulated GPUs) is bitwise equal and in rank order") {
  for (int nranks : {2, 3}) {
    CAPTURE(nranks);
    // Elements 0 and 1 hold values whose fp32 sums are exact only in some orders (1e8 + 1 == 1e8).
    auto mine = [nranks](int r) {
      std::vector<float> v(1001);
      for (size_t i = 0; i < v.size(); ++i) v[i] = float(i) * float(r + 1) + 0.5f * float(r);
      v[0] = r == 0 ? 1e8f : r == 1 ? 1.f : 0.f;
      v[1] = r == nranks - 1 ? -1e8f : r == 0 ? 1e8f : 0.f;
      return v;
    };
    std::vector<float> expected(1001);
    for (int r = 0; r < nranks; ++r)
      for (size_t i = 2; i < expected.size(); ++i) expected[i] += mine(r)[i];
    expected[0] = 1e8f;  // 1e8 + 1 rounds to 1e8 in fp32
    expected[1] = 0.f;
    auto rs = allreduce_threads<float>(nranks, ncclFloat32, ncclSum, mine);
    check_all_equal(rs, bytes_of(expected));
  }
  // Order check by itself: 1e8 + 1 - 1e8 in rank order is 0 (not 1).
  auto rs = allreduce_threads<float>(3, ncclFloat32, ncclSum, [](int r) {
    return std::vector<float>{r == 0 ? 1e8f : r == 1 ? 1.f : -1e8f};
  });
  check_all_equal(rs, bytes_of(std::vector<float>{0.f}));
}

TEST_CASE("nccl: f64 and bf16 sums, avg, in place") {
  SUBCASE("f64") {
    auto rs = allreduce_threads<double>(3, ncclFloat64, ncclSum, [](int r) {
      return std::vector<double>{0.1 * (r + 1), 1e300, -2.0 * r};
    });
    check_all_equal(rs, bytes_of(std::vector<double>{(0.1 + 0.2) + 0.30000000000000004, 3e300, -6.0}));
  }
  SUBCASE("bf16: accumulated in float, rounded once") {
    using rtune::sim::standin::float_to_bf16;
    // 256 + 1 + 1: bf16 has 8 significant bits, so rounding after each add would give 256; once, 258.
    auto rs = allreduce_threads<uint16_t>(3, ncclBfloat16, ncclSum, [](int r) {
      return std::vector<uint16_t>{float_to_bf16(r == 0 ? 256.f : 1.f), float_to_bf16(1.5f * float(r))};
    });
    check_all_equal(rs, bytes_of(std::vector<uint16_t>{float_to_bf16(258.f), float_to_bf16(4.5f)}));
  }
  SUBCASE("avg divides the sum by nranks") {
    auto rs = allreduce_threads<float>(2, ncclFloat32, ncclAvg, [](int r) { return std::vector<float>{2.f + 2 * r, -1.f}; });
    check_all_equal(rs, bytes_of(std::vector<float>{3.f, -1.f}));
  }
  SUBCASE("in place (sendbuff == recvbuff)") {
    auto rs = allreduce_threads<float>(3, ncclFloat32, ncclSum, [](int r) { return std::vector<float>{float(r), 10.f}; },
                                       /*in_place=*/true);
    check_all_equal(rs, bytes_of(std::vector<float>{3.f, 30.f}));
  }
}

TEST_CASE("nccl: 3 M floats go through the staging slots in several chunks") {
  const size_t n = 3'000'000;  // 12 MB: about 12 chunks of 1 MiB
  auto mine = [n](int r) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = float(i % 4096) + float(r) * 4096.f;
    return v;
  };
  std::vector<float> expected(n);
  for (size_t i = 0; i < n; ++i) expected[i] = 2.f * float(i % 4096) + 4096.f;
  check_all_equal(allreduce_threads<float>(2, ncclFloat32, ncclSum, mine), bytes_of(expected));
}

TEST_CASE("nccl: broadcast from root 1 reaches every rank") {
  auto rs = run_threads(3, [](int r, ncclComm_t comm, RankResult& res) {
    int device = -1, rank = -1, count = 0;
    CHECK(ncclCommCuDevice(comm, &device) == ncclSuccess);  // the device current at init
    CHECK(ncclCommUserRank(comm, &rank) == ncclSuccess);
    CHECK(ncclCommCount(comm, &count) == ncclSuccess);
    CHECK((device == r && rank == r && count == 3));
    DeviceBuffer<double> buf(std::vector<double>(300'000, double(r) + 0.25));  // > one chunk
    // Only the root's sendbuff is read: the others pass null.
    res.call = ncclBroadcast(r == 1 ? buf.get() : nullptr, buf.get(), buf.size(), ncclFloat64, 1, comm, nullptr);
    if (res.call != ncclSuccess) res.message = ncclGetLastError(comm);
    res.bytes = bytes_of(buf.download());
  });
  check_all_equal(rs, bytes_of(std::vector<double>(300'000, 1.25)));
}

TEST_CASE("nccl: ranks issuing different collectives fail on every rank with ncclInvalidUsage") {
  auto rs = run_threads(2, [](int r, ncclComm_t comm, RankResult& res) {
    DeviceBuffer<float> buf(16);
    buf.fill_bytes(0);
    res.call = ncclAllReduce(buf.get(), buf.get(), r == 0 ? 16 : 12, ncclFloat32, ncclSum, comm, nullptr);
    res.message = ncclGetLastError(comm);
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(comm, &async);
    CHECK(async == ncclInvalidUsage);
  });
  for (const auto& res : rs) {
    CHECK(res.call == ncclInvalidUsage);
    CHECK(res.message.find("rank 0 called ncclAllReduce(count 16, float32, sum) but rank 1 called "
                           "ncclAllReduce(count 12, float32, sum)") != std::string::npos);
  }
}

TEST_CASE("nccl: a peer that never arrives: timeout (RTUNE_SIM_NCCL_TIMEOUT) and an async error") {
  ::setenv("RTUNE_SIM_NCCL_TIMEOUT", "1", 1);
  std::atomic<bool> rank0_done{false};
  double seconds = 0;
  auto rs = run_threads(2, [&](int r, ncclComm_t comm, RankResult& res) {
    if (r == 1) {  // joins, then never calls the collective; leaves only after rank 0 gave up
      while (!rank0_done) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return;
    }
    DeviceBuffer<float> buf(std::vector<float>{1.f});
    const auto t0 = std::chrono::steady_clock::now();
    res.call = ncclAllReduce(buf.get(), buf.get(), 1, ncclFloat32, ncclSum, comm, nullptr);
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    res.message = ncclGetLastError(comm);
    ncclResult_t async = ncclSuccess;
    CHECK(ncclCommGetAsyncError(comm, &async) == ncclSuccess);
    CHECK(async == ncclSystemError);
    // Later collectives fail at once with the same error.
    const auto t1 = std::chrono::steady_clock::now();
    CHECK(ncclAllReduce(buf.get(), buf.get(), 1, ncclFloat32, ncclSum, comm, nullptr) == ncclSystemError);
    CHECK(std::chrono::steady_clock::now() - t1 < std::chrono::milliseconds(500));  // no 1 s wait
    rank0_done = true;
  });
  ::unsetenv("RTUNE_SIM_NCCL_TIMEOUT");
  CHECK(rs[0].call == ncclSystemError);
  CHECK(rs[0].message.find("timed out after 1 s") != std::string::npos);
  CHECK(rs[0].message.find("waiting for rank(s) 1") != std::string::npos);
  CHECK(rs[0].message.find("collective #1") != std::string::npos);
  CHECK(seconds >= 0.9);
  CHECK(seconds < 5.0);
}

TEST_CASE("nccl: init waits for every rank, then unlinks the segment; a missing rank times out") {
  install_validator();
  ::setenv("RTUNE_SIM_NCCL_TIMEOUT", "0.3", 1);
  const ncclUniqueId id = make_id();
  const std::string segment = std::string("/dev/shm") + (id.internal + 8);  // the name after the magic
  ncclComm_t comm = nullptr;
  CHECK(ncclCommInitRank(&comm, 2, id, 0) == ncclSystemError);  // rank 1 never comes
  const std::string msg = ncclGetLastError(nullptr);
  CHECK(msg.find("ncclCommInitRank (rank 0 of 2): timed out after 0.3 s") != std::string::npos);
  CHECK(msg.find("waiting for rank(s) 1") != std::string::npos);
  CHECK(access(segment.c_str(), F_OK) != 0);  // nothing left behind in /dev/shm

  ::setenv("RTUNE_SIM_NCCL_TIMEOUT", "20", 1);
  auto rs = run_threads(2, [&](int r, ncclComm_t, RankResult& res) {
    // Every rank has mapped the segment once init returns: it is unlinked already.
    res.call = access(segment.c_str(), F_OK) != 0 ? ncclSuccess : ncclInternalError;
    (void)r;
  });
  for (const auto& res : rs) CHECK(res.call == ncclSuccess);
  ::unsetenv("RTUNE_SIM_NCCL_TIMEOUT");
}

TEST_CASE("nccl: a peer that destroys its communicator while another waits gives ncclRemoteError") {
  ::setenv("RTUNE_SIM_NCCL_TIMEOUT", "20", 1);
  auto rs = run_threads(2, [](int r, ncclComm_t comm, RankResult& res) {
    if (r == 1) return;  // destroys at once (run_threads), without the collective
    DeviceBuffer<float> buf(std::vector<float>{1.f});
    res.call = ncclAllReduce(buf.get(), buf.get(), 1, ncclFloat32, ncclSum, comm, nullptr);
    res.message = ncclGetLastError(comm);
  });
  ::unsetenv("RTUNE_SIM_NCCL_TIMEOUT");
  CHECK(rs[0].call == ncclRemoteError);
  CHECK(rs[0].message.find("rank(s) 1 left the communicator") != std::string::npos);
}

TEST_CASE("nccl: a peer process that exited gives ncclRemoteError at once, not after the timeout") {
  install_validator();
  ::setenv("RTUNE_SIM_NCCL_TIMEOUT", "60", 1);
  const ncclUniqueId id = make_id();
  std::fflush(nullptr);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {  // rank 1: joins, then exits without calling the collective
    ncclComm_t comm = nullptr;
    _exit(ncclCommInitRank(&comm, 2, id, 1) == ncclSuccess ? 0 : 3);
  }
  ncclComm_t comm = nullptr;
  REQUIRE(ncclCommInitRank(&comm, 2, id, 0) == ncclSuccess);
  DeviceBuffer<float> buf(std::vector<float>{1.f, 2.f});
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(ncclAllReduce(buf.get(), buf.get(), 2, ncclFloat32, ncclSum, comm, nullptr) == ncclRemoteError);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
  const std::string msg = ncclGetLastError(comm);
  CHECK(msg.find("rank(s) 1 exited") != std::string::npos);
  CHECK(msg.find("collective #1") != std::string::npos);
  ncclResult_t async = ncclSuccess;
  CHECK(ncclCommGetAsyncError(comm, &async) == ncclSuccess);
  CHECK(async == ncclRemoteError);
  CHECK(ncclCommAbort(comm) == ncclSuccess);
  int status = 0;
  waitpid(child, &status, 0);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  ::unsetenv("RTUNE_SIM_NCCL_TIMEOUT");
}

TEST_CASE("nccl: two processes meet through the unique id and all-reduce") {
  install_validator();
  const ncclUniqueId id = make_id();  // rank 0 makes it; fork stands in for rtune's MPI broadcast
  auto run_rank = [&](int rank) {
    ncclComm_t comm = nullptr;
    if (ncclCommInitRank(&comm, 2, id, rank) != ncclSuccess) return false;
    DeviceBuffer<float> send(std::vector<float>{float(rank) + 1.f, 100.f * float(rank)}), recv(2);
    const bool ok = ncclAllReduce(send.get(), recv.get(), 2, ncclFloat32, ncclSum, comm, nullptr) == ncclSuccess &&
                    recv.download() == std::vector<float>{3.f, 100.f};
    return ncclCommDestroy(comm) == ncclSuccess && ok;
  };
  std::fflush(nullptr);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) _exit(run_rank(1) ? 0 : 1);
  CHECK(run_rank(0));
  int status = 0;
  waitpid(child, &status, 0);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
}

TEST_CASE("nccl: bad init arguments") {
  install_validator();
  ncclComm_t comm = nullptr;
  CHECK(ncclCommInitRank(&comm, 2, make_id(), 2) == ncclInvalidArgument);
  CHECK(std::string(ncclGetLastError(nullptr)).find("rank 2 is not in [0, nranks 2)") != std::string::npos);
  CHECK(ncclCommInitRank(&comm, 0, make_id(), 0) == ncclInvalidArgument);
  ncclUniqueId made_up{};
  std::strcpy(made_up.internal, "hello");
  CHECK(ncclCommInitRank(&comm, 1, made_up, 0) == ncclInvalidArgument);
  CHECK(std::string(ncclGetLastError(nullptr)).find("not made by ncclGetUniqueId") != std::string::npos);
  ::setenv("RTUNE_SIM_NCCL_TIMEOUT", "soon", 1);
  CHECK(ncclCommInitRank(&comm, 1, make_id(), 0) == ncclInvalidArgument);
  CHECK(std::string(ncclGetLastError(nullptr)).find("RTUNE_SIM_NCCL_TIMEOUT='soon'") != std::string::npos);
  ::unsetenv("RTUNE_SIM_NCCL_TIMEOUT");
  CHECK(comm == nullptr);
}

TEST_CASE("nccl: ranks disagreeing on nranks, a rank joining twice, two ranks on one GPU") {
  ::setenv("RTUNE_SIM_NCCL_TIMEOUT", "20", 1);
  ::setenv("RTUNE_SIM_DEVICES", "4", 1);
  // Each case: per thread (nranks, rank, device); every thread must fail with ncclInvalidUsage.
  struct Join { int nranks, rank, device; };
  const std::vector<std::vector<Join>> cases = {
      {{2, 0, 0}, {3, 1, 1}},  // nranks differ
      {{2, 0, 0}, {2, 0, 1}},  // rank 0 twice
      {{2, 0, 1}, {2, 1, 1}},  // both on device 1
  };
  const std::vector<std::string> expected = {"every rank must pass the same nranks", "joined the communicator twice",
                                             "both use simulated CUDA device 1"};
  for (size_t c = 0; c < cases.size(); ++c) {
    CAPTURE(c);
    const ncclUniqueId id = make_id();
    std::vector<ncclResult_t> got(cases[c].size(), ncclSuccess);
    std::vector<std::string> msg(cases[c].size());
    std::vector<std::thread> ts;
    for (size_t t = 0; t < cases[c].size(); ++t)
      ts.emplace_back([&, t] {
        const Join j = cases[c][t];
        rt::set_device(j.device);
        ncclComm_t comm = nullptr;
        got[t] = ncclCommInitRank(&comm, j.nranks, id, j.rank);
        msg[t] = ncclGetLastError(nullptr);
        if (got[t] == ncclSuccess) ncclCommDestroy(comm);
      });
    for (auto& t : ts) t.join();
    bool one_names_it = false;
    for (size_t t = 0; t < got.size(); ++t) {
      CHECK(got[t] != ncclSuccess);
      one_names_it = one_names_it || msg[t].find(expected[c]) != std::string::npos;
    }
    CHECK(one_names_it);
  }
  ::unsetenv("RTUNE_SIM_NCCL_TIMEOUT");
}

TEST_CASE("nccl: host buffers, unsupported types and ops, bad root, group nesting") {
  install_validator();
  ncclComm_t comm = nullptr;
  REQUIRE(ncclCommInitRank(&comm, 1, make_id(), 0) == ncclSuccess);
  DeviceBuffer<float> dev(std::vector<float>{1.f, 2.f});
  std::vector<float> host{1.f, 2.f};
  CHECK(ncclAllReduce(host.data(), dev.get(), 2, ncclFloat32, ncclSum, comm, nullptr) == ncclInvalidArgument);
  CHECK(std::string(ncclGetLastError(comm)).find("sendbuff") != std::string::npos);
  CHECK(std::string(ncclGetLastError(comm)).find("host memory") != std::string::npos);
  // Past the end of the allocation: the validator's message.
  CHECK(ncclAllReduce(dev.get(), dev.get(), 3, ncclFloat32, ncclSum, comm, nullptr) == ncclInvalidArgument);
  CHECK(ncclAllReduce(dev.get(), dev.get(), 2, ncclFloat32, ncclProd, comm, nullptr) == ncclInvalidArgument);
  CHECK(std::string(ncclGetLastError(comm)).find("not float32 with prod") != std::string::npos);
  CHECK(ncclAllReduce(dev.get(), dev.get(), 2, ncclUint8, ncclSum, comm, nullptr) == ncclInvalidArgument);
  CHECK(ncclBroadcast(dev.get(), dev.get(), 2, ncclFloat32, 1, comm, nullptr) == ncclInvalidArgument);
  {  // a buffer allocated while another simulated device was current
    ::setenv("RTUNE_SIM_DEVICES", "2", 1);
    rt::set_device(1);
    DeviceBuffer<float> other(std::vector<float>{1.f, 2.f});
    rt::set_device(0);
    CHECK(ncclAllReduce(dev.get(), other.get(), 2, ncclFloat32, ncclSum, comm, nullptr) == ncclInvalidArgument);
    CHECK(std::string(ncclGetLastError(comm)).find("recvbuff was allocated on simulated device 1, but the "
                                                   "communicator's device is 0") != std::string::npos);
  }
  // Local argument errors are not async errors: the communicator still works.
  ncclResult_t async = ncclInternalError;
  CHECK(ncclCommGetAsyncError(comm, &async) == ncclSuccess);
  CHECK(async == ncclSuccess);
  rtune::sim::call_log_enable(true);
  rtune::sim::call_log_clear();
  CHECK(ncclGroupStart() == ncclSuccess);
  CHECK(ncclAllReduce(dev.get(), dev.get(), 2, ncclFloat32, ncclAvg, comm, nullptr) == ncclSuccess);
  CHECK(ncclGroupEnd() == ncclSuccess);
  const auto log = rtune::sim::call_log_take();
  rtune::sim::call_log_enable(false);
  REQUIRE(log.size() == 1);
  CHECK(log[0].function == "ncclAllReduce");
  CHECK(log[0].detail.find("count 2, float32, avg") != std::string::npos);
  CHECK(log[0].detail.find("rank 0/1") != std::string::npos);
  CHECK(dev.download() == std::vector<float>{1.f, 2.f});
  CHECK(ncclGroupEnd() == ncclInvalidUsage);
  CHECK(ncclCommDestroy(comm) == ncclSuccess);
}
