// dist::DeviceComm over NCCL (docs/cuda-libs-semantics.md, NCCL section). Collectives run on their own
// stream, each after an event recorded on the backend's stream; the buffers they touch are the caller's
// persistent tensors (gradient buckets, parameters), never blocks the caching allocator could recycle
// while the collective runs (the allocator assumes one stream).
#include "kernels/cuda/nccl_comm.h"

#include <nccl.h>

#include <array>
#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "engine/error.h"
#include "kernels/cuda/handles.h"
#include "kernels/cuda/runtime.h"

namespace rtune::cuda {
namespace {

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::bf16: return ncclBfloat16;
    case DType::f16: return ncclFloat16;
    case DType::i64: return ncclInt64;
    default: fail("NCCL: no collective for {} tensors", dtype_name(t));
  }
}

class NcclComm final : public dist::DeviceComm {
 public:
  NcclComm(dist::Comm& host, Device device) : host_(host), rank_(host.rank()), size_(host.size()), device_(device) {
    ncclUniqueId id{};
    if (rank_ == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    host.broadcast(std::span<std::byte>(reinterpret_cast<std::byte*>(&id), sizeof id), 0);
    handles();  // the backend is up on this rank's GPU (cudaSetDevice) before NCCL binds to the current one
    check(ncclCommInitRank(&comm_, size_, id, rank_), "ncclCommInitRank");
    // Non-blocking: a stream that synchronised with the backend's legacy default stream could not overlap
    // the backward; the events of after_backend() and join() are the only order between the two.
    stream_ = rt::stream_create(/*non_blocking=*/true);
    queued_ = rt::event_create(false);
    done_ = rt::event_create(false);
    for (rt::Event& e : marks_) e = rt::event_create(false);
    int v = 0;
    ncclGetVersion(&v);
    version_ = fmt::format("{}.{}.{}", v / 10000, v / 100 % 100, v % 100);
  }
  ~NcclComm() override {
    if (comm_ && !aborted_) ncclCommDestroy(comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void allreduce_mean_async(Tensor& t) override {
    void* p = dense(t, "all-reduce");
    after_backend();
    check(ncclAllReduce(p, p, size_t(t.numel()), nccl_type(t.dtype()), ncclAvg, comm_, stream_.raw()), "ncclAllReduce");
    rt::event_record(done_, stream_);
  }

  void broadcast_async(Tensor& t, int root) override {
    void* p = dense(t, "broadcast");
    after_backend();
    check(ncclBroadcast(p, p, size_t(t.numel()), nccl_type(t.dtype()), root, comm_, stream_.raw()), "ncclBroadcast");
    rt::event_record(done_, stream_);
  }

  void join() override { rt::stream_wait_event(stream(), done_); }

  uint64_t mark() override {
    rt::event_record(marks_[marks_made_ % marks_.size()], stream_);
    return marks_made_++;
  }

  void wait_bounded(const char* what, uint64_t m) override {
    RTUNE_CHECK(m < marks_made_ && marks_made_ - m <= marks_.size(), "NCCL: mark {} is no longer waitable ({} made)",
                m, marks_made_);
    const rt::Event done = marks_[m % marks_.size()];
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    const auto limit = std::chrono::duration<double>(dist::collective_timeout_seconds());
    for (;;) {
      ncclResult_t async = ncclSuccess;
      check(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
      if (async != ncclSuccess && async != ncclInProgress) {
        const std::string why = fmt::format("{} ({})", ncclGetErrorString(async), ncclGetLastError(comm_));
        abort();
        fail("NCCL {} failed on rank {} of {}: {}; ending the job", what, rank_, size_, why);
      }
      if (rt::event_query(done)) return;
      const auto waited = Clock::now() - t0;
      // Past the limit, or another rank gave up first: a roll call over MPI names who does not answer.
      const bool other_gave_up = host_.roll_call_pending();
      if (waited > limit || other_gave_up) {
        abort();
        fail("the NCCL {} waited {:.0f} s for the other ranks{}: {}; ending the job (RTUNE_DIST_TIMEOUT sets the "
             "limit in seconds)", what, std::chrono::duration<double>(waited).count(),
             other_gave_up ? " (another rank gave up first)" : "", dist::describe_silent(host_.roll_call()));
      }
      if (waited > std::chrono::milliseconds(1)) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }

  std::string describe() const override {
    return fmt::format("NCCL {} on {}, {} ranks", version_, device_.str(), size_);
  }

 private:
  void* dense(Tensor& t, const char* what) const {
    // Dense in either memory format: every rank lays the tensor out alike (the same code made it).
    RTUNE_CHECK(t.device() == device_ && (t.is_contiguous() || t.is_contiguous(MemoryFormat::channels_last)),
                "NCCL {}: a dense tensor on {}, got {}", what, device_.str(), t.str());
    return t.raw_data();
  }
  // The collective starts after everything the backend queued so far (the gradients it reads).
  void after_backend() {
    rt::event_record(queued_, stream());
    rt::stream_wait_event(stream_, queued_);
  }
  void check(ncclResult_t r, const char* call) {
    if (r == ncclSuccess || r == ncclInProgress) return;
    const char* detail = comm_ ? ncclGetLastError(comm_) : ncclGetLastError(nullptr);
    fail("NCCL {} failed on rank {} of {}: {}{}{}", call, rank_, size_, ncclGetErrorString(r),
         detail && *detail ? ": " : "", detail ? detail : "");
  }
  // A peer is gone or stuck: ncclCommAbort returns without waiting for it (ncclCommDestroy would not).
  void abort() {
    if (comm_ && !aborted_) ncclCommAbort(comm_);
    aborted_ = true;
  }

  dist::Comm& host_;  // MPI: the roll call when a collective hangs
  int rank_, size_;
  Device device_;
  ncclComm_t comm_ = nullptr;
  bool aborted_ = false;
  rt::Stream stream_;
  rt::Event queued_, done_;
  std::array<rt::Event, 4> marks_;
  uint64_t marks_made_ = 0;
  std::string version_;
};

}  // namespace

std::unique_ptr<dist::DeviceComm> make_nccl_comm(dist::Comm& host, Device device) {
  return std::make_unique<NcclComm>(host, device);
}

}  // namespace rtune::cuda
