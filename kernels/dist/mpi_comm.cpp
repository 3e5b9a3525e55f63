// The MPI communicator (comm.h): MPI_COMM_WORLD of the job mpirun or srun started. Only the main
// thread calls MPI (MPI_THREAD_FUNNELED): the loader's workers never communicate.
// The C API only: Open MPI's deprecated C++ bindings would need libmpi_cxx.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <thread>
#include <numeric>
#include <vector>

#include <fmt/format.h>

#include "engine/error.h"
#include "kernels/dist/comm.h"

namespace rtune::dist {
namespace {

bool g_started = false;

void check(int rc, const char* what);

// The roll call (comm.h): point-to-point messages on a tag of their own, beside the collectives.
constexpr int kRollCallTag = 0x7e11;
constexpr double kRollCallGraceS = 2.0;  // healthy ranks answer from their wait loop within milliseconds

bool roll_call_pending_mpi() {
  int flag = 0;
  MPI_Iprobe(MPI_ANY_SOURCE, kRollCallTag, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
  return flag != 0;
}

std::vector<int> roll_call_mpi(double grace_s) {
  int me = 0, n = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  static int token;  // outlives the sends, which are never waited for (the job is ending)
  token = me;
  for (int r = 0; r < n; ++r) {
    if (r == me) continue;
    MPI_Request q;
    if (MPI_Isend(&token, 1, MPI_INT, r, kRollCallTag, MPI_COMM_WORLD, &q) == MPI_SUCCESS) MPI_Request_free(&q);
  }
  std::vector<bool> heard(size_t(n), false);
  heard[size_t(me)] = true;
  int missing = n - 1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(grace_s);
  while (missing > 0 && std::chrono::steady_clock::now() < deadline) {
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, kRollCallTag, MPI_COMM_WORLD, &flag, &st);
    if (!flag) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    int v = 0;
    MPI_Recv(&v, 1, MPI_INT, st.MPI_SOURCE, kRollCallTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (!heard[size_t(st.MPI_SOURCE)]) heard[size_t(st.MPI_SOURCE)] = true, --missing;
  }
  std::vector<int> silent;
  for (int r = 0; r < n; ++r)
    if (!heard[size_t(r)]) silent.push_back(r);
  return silent;
}

// Waits for a non-blocking collective, polling (MPI_Test drives its progress) and backing off to short
// sleeps after the first millisecond. Past collective_timeout_seconds(), or when another rank gave up
// first (its roll call arrives), it calls the roll and fails naming the ranks that did not answer; the
// caller's error path (rtune's main) ends the whole job with MPI_Abort.
void wait_bounded(MPI_Request& req, const char* what) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::duration<double>(collective_timeout_seconds());
  for (int done = 0;;) {
    check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), what);
    if (done) return;
    const auto now = Clock::now();
    const bool other_gave_up = roll_call_pending_mpi();
    if (now > deadline || other_gave_up)
      fail("the {} waited {:.0f} s for the other ranks{}: {}; ending the job (RTUNE_DIST_TIMEOUT sets the limit "
           "in seconds)", what, std::chrono::duration<double>(now - t0).count(),
           other_gave_up ? " (another rank gave up first)" : "", describe_silent(roll_call_mpi(kRollCallGraceS)));
    if (now - t0 > std::chrono::milliseconds(1)) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  fail("MPI {} failed: {}", what, std::string(msg, size_t(len)));
}

// MPI counts are int: a span longer than that goes in pieces.
template <class T>
void allreduce_chunks(std::span<T> data, MPI_Datatype type) {
  constexpr size_t kChunk = size_t(1) << 30;
  for (size_t at = 0; at < data.size(); at += kChunk) {
    const int n = int(std::min(kChunk, data.size() - at));
    MPI_Request req;
    check(MPI_Iallreduce(MPI_IN_PLACE, data.data() + at, n, type, MPI_SUM, MPI_COMM_WORLD, &req), "all-reduce");
    wait_bounded(req, "all-reduce");
  }
}

class MpiComm final : public Comm {
 public:
  MpiComm() {
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "init");
    g_started = true;
    // Errors come back as return codes (named by check()) instead of MPI aborting without a word.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(lib, &len);
    std::string l(lib, size_t(len));
    library_ = l.substr(0, l.find(','));
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduce_sum(std::span<float> d) override { allreduce_chunks(d, MPI_FLOAT); }
  void allreduce_sum(std::span<double> d) override { allreduce_chunks(d, MPI_DOUBLE); }
  void allreduce_sum(std::span<int64_t> d) override { allreduce_chunks(d, MPI_INT64_T); }
  void broadcast(std::span<std::byte> d, int root) override {
    RTUNE_CHECK(d.size() < size_t(1) << 31, "broadcast of {} bytes: over MPI's int count", d.size());
    MPI_Request req;
    check(MPI_Ibcast(d.data(), int(d.size()), MPI_BYTE, root, MPI_COMM_WORLD, &req), "broadcast");
    wait_bounded(req, "broadcast");
  }
  std::vector<std::string> allgather(const std::string& text) override {
    int mine = int(text.size());
    std::vector<int> lens(size_t(size_), 0), offsets(size_t(size_), 0);
    MPI_Request req;
    check(MPI_Iallgather(&mine, 1, MPI_INT, lens.data(), 1, MPI_INT, MPI_COMM_WORLD, &req), "all-gather");
    wait_bounded(req, "all-gather");
    std::exclusive_scan(lens.begin(), lens.end(), offsets.begin(), 0);
    std::string all(size_t(offsets.back() + lens.back()), '\0');
    check(MPI_Iallgatherv(text.data(), mine, MPI_CHAR, all.data(), lens.data(), offsets.data(), MPI_CHAR, MPI_COMM_WORLD,
                          &req),
          "all-gather");
    wait_bounded(req, "all-gather");
    std::vector<std::string> out;
    for (int r = 0; r < size_; ++r) out.push_back(all.substr(size_t(offsets[size_t(r)]), size_t(lens[size_t(r)])));
    return out;
  }
  std::string describe() const override { return fmt::format("MPI ({}), {} ranks", library_, size_); }
  std::vector<int> roll_call() override { return roll_call_mpi(kRollCallGraceS); }
  bool roll_call_pending() override { return roll_call_pending_mpi(); }

 private:
  int rank_ = 0, size_ = 1;
  std::string library_;
};

}  // namespace

std::unique_ptr<Comm> make_mpi_comm() { return std::make_unique<MpiComm>(); }
bool mpi_started() { return g_started; }
void mpi_finalize() {
  g_started = false;
  MPI_Finalize();
}
void mpi_abort(int exit_code) { MPI_Abort(MPI_COMM_WORLD, exit_code); }

}  // namespace rtune::dist
