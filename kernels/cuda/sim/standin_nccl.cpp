// NCCL 2.x stand-in for the simulated CUDA device (docs/cuda-libs-semantics.md §14): communicators
// whose ranks are threads of this process or processes on this host (nccl_clique.h), all-reduce
// (sum, avg) and broadcast executed synchronously on the calling thread, as the simulator runs all
// stream work. Stricter than NCCL where NCCL would hang or corrupt: ranks issuing different
// collectives fail with ncclInvalidUsage; a peer that is gone or never arrives gives an async error.
// Sums run in rank order (rank 0 + rank 1 + ...), so every rank gets bitwise the same result: fp32
// and fp64 in their own arithmetic, int32/int64 wrapping, fp16/bf16 accumulated in float and rounded
// once (real NCCL rounds after each step, in an order it does not specify). ncclAvg is the sum
// divided by nranks (real NCCL premultiplies floating types by 1/nranks: the last bit may differ).
#include <fmt/format.h>
#include <nccl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <set>

#include "kernels/cuda/runtime.h"
#include "kernels/cuda/sim/call_log.h"
#include "kernels/cuda/sim/internal.h"
#include "kernels/cuda/sim/nccl_clique.h"
#include "kernels/cuda/sim/standin.h"

namespace rt = rtune::cuda::rt;
using rtune::sim::nccl::Clique;
using rtune::sim::nccl::Failure;

struct ncclComm {
  std::unique_ptr<Clique> clique;
  int device = 0;
  uint64_t seq = 0;  // collectives issued on this communicator
  ncclResult_t async_error = ncclSuccess;
  std::string async_text;
};

namespace {

constexpr char kIdMagic[8] = {'r', 't', 'N', 'C', 'C', 'L', 'i', 'd'};
constexpr const char* kNamePrefix = "/rtune-nccl-";
constexpr int kAllReduce = 1, kBroadcast = 2;

std::mutex g_mu;
std::set<const ncclComm*> g_comms;  // live communicators: a destroyed or made-up handle is refused
thread_local std::string tl_last_error;
thread_local int tl_group_depth = 0;

void check_comm(const ncclComm* comm, const char* who) {
  std::lock_guard lock(g_mu);
  if (!comm || !g_comms.count(comm))
    throw Failure(ncclInvalidArgument, fmt::format("{}: {} is not a live communicator from ncclCommInitRank", who,
                                                   static_cast<const void*>(comm)));
}

// Runs body, turning a Failure (or a check of the simulated runtime) into the status NCCL returns,
// with the message kept for ncclGetLastError.
template <class Body>
ncclResult_t guarded(Body body) {
  try {
    body();
    return ncclSuccess;
  } catch (const Failure& f) {
    tl_last_error = f.what();
    return f.code;
  } catch (const std::bad_alloc&) {
    tl_last_error = "out of host memory";
    return ncclSystemError;
  } catch (const std::exception& e) {
    tl_last_error = e.what();
    return ncclInvalidArgument;
  }
}

double timeout_seconds() {
  const char* env = std::getenv("RTUNE_SIM_NCCL_TIMEOUT");
  if (!env) return 300.0;
  char* end = nullptr;
  const double s = std::strtod(env, &end);
  if (end == env || *end != '\0' || !(s > 0))
    throw Failure(ncclInvalidArgument, fmt::format("RTUNE_SIM_NCCL_TIMEOUT='{}': expected seconds (> 0)", env));
  return s;
}

std::string id_name(const ncclUniqueId& id) {
  const char* name = id.internal + sizeof kIdMagic;
  const size_t room = sizeof id.internal - sizeof kIdMagic;
  if (std::memcmp(id.internal, kIdMagic, sizeof kIdMagic) != 0 || !std::memchr(name, '\0', room) ||
      std::strncmp(name, kNamePrefix, std::strlen(kNamePrefix)) != 0)
    throw Failure(ncclInvalidArgument, "ncclCommInitRank: the unique id was not made by ncclGetUniqueId (call it on "
                                       "one rank and pass its 128 bytes to every rank)");
  return name;
}

// ---- element types and reduction

size_t type_bytes(ncclDataType_t t) {
  switch (t) {
    case ncclInt8: case ncclUint8: case ncclFloat8e4m3: case ncclFloat8e5m2: return 1;
    case ncclFloat16: case ncclBfloat16: return 2;
    case ncclInt32: case ncclUint32: case ncclFloat32: return 4;
    case ncclInt64: case ncclUint64: case ncclFloat64: return 8;
    default: return 0;
  }
}
const char* type_name(int t) {
  switch (t) {
    case ncclInt8: return "int8"; case ncclUint8: return "uint8"; case ncclInt32: return "int32";
    case ncclUint32: return "uint32"; case ncclInt64: return "int64"; case ncclUint64: return "uint64";
    case ncclFloat16: return "float16"; case ncclFloat32: return "float32"; case ncclFloat64: return "float64";
    case ncclBfloat16: return "bfloat16"; case ncclFloat8e4m3: return "float8e4m3"; case ncclFloat8e5m2: return "float8e5m2";
    default: return "unknown type";
  }
}
const char* op_name(int op) {
  switch (op) {
    case ncclSum: return "sum"; case ncclProd: return "prod"; case ncclMax: return "max";
    case ncclMin: return "min"; case ncclAvg: return "avg"; default: return "unknown op";
  }
}
bool reducible(ncclDataType_t t) {
  return t == ncclFloat32 || t == ncclFloat64 || t == ncclFloat16 || t == ncclBfloat16 || t == ncclInt32 ||
         t == ncclInt64;
}

// out[i] = in[0][i] + in[1][i] + ... (rank order), then / nranks for avg. Acc: the arithmetic.
template <class T, class Acc, class Load, class Store>
void reduce_chunk(const std::byte* const* in, int nranks, size_t n, bool avg, T* out, Load load, Store store) {
  for (size_t i = 0; i < n; ++i) {
    Acc acc = load(reinterpret_cast<const T*>(in[0])[i]);
    for (int r = 1; r < nranks; ++r) acc = Acc(acc + load(reinterpret_cast<const T*>(in[r])[i]));
    out[i] = store(avg ? Acc(acc / Acc(nranks)) : acc);
  }
}
template <class T>
T same(T v) { return v; }

void reduce(ncclDataType_t t, const std::byte* const* in, int nranks, size_t n, bool avg, void* out) {
  using namespace rtune::sim::standin;
  switch (t) {
    case ncclFloat32: return reduce_chunk<float, float>(in, nranks, n, avg, static_cast<float*>(out), same<float>, same<float>);
    case ncclFloat64: return reduce_chunk<double, double>(in, nranks, n, avg, static_cast<double*>(out), same<double>, same<double>);
    case ncclFloat16:
      return reduce_chunk<uint16_t, float>(in, nranks, n, avg, static_cast<uint16_t*>(out), half_to_float, float_to_half);
    case ncclBfloat16:
      return reduce_chunk<uint16_t, float>(in, nranks, n, avg, static_cast<uint16_t*>(out), bf16_to_float, float_to_bf16);
    case ncclInt32: {  // wraps like the GPU's integer adds (unsigned arithmetic, no UB); avg is signed division
      auto load = [](int32_t v) { return uint32_t(v); };
      auto* o = static_cast<int32_t*>(out);
      for (size_t i = 0; i < n; ++i) {
        uint32_t acc = load(reinterpret_cast<const int32_t*>(in[0])[i]);
        for (int r = 1; r < nranks; ++r) acc += load(reinterpret_cast<const int32_t*>(in[r])[i]);
        o[i] = avg ? int32_t(acc) / nranks : int32_t(acc);
      }
      return;
    }
    case ncclInt64: {
      auto* o = static_cast<int64_t*>(out);
      for (size_t i = 0; i < n; ++i) {
        uint64_t acc = uint64_t(reinterpret_cast<const int64_t*>(in[0])[i]);
        for (int r = 1; r < nranks; ++r) acc += uint64_t(reinterpret_cast<const int64_t*>(in[r])[i]);
        o[i] = avg ? int64_t(acc) / nranks : int64_t(acc);
      }
      return;
    }
    default: return;
  }
}

// ---- collectives

struct Collective {
  const char* fn;
  int kind;
  const void* send;
  void* recv;
  size_t count;
  ncclDataType_t dtype;
  ncclRedOp_t op;  // all-reduce only
  int root;        // broadcast only
};

std::string describe(const rtune::sim::nccl::CallRecord& c) {
  if (c.kind == kAllReduce)
    return fmt::format("ncclAllReduce(count {}, {}, {})", c.count, type_name(c.dtype), op_name(c.op));
  return fmt::format("ncclBroadcast(count {}, {}, root {})", c.count, type_name(c.dtype), c.root);
}

// The local checks (no peer involved): what real NCCL refuses with ncclInvalidArgument, plus the
// buffers' device ranges through the stand-ins' pointer validator.
void check_arguments(const ncclComm& comm, const Collective& c, cudaStream_t stream) {
  const size_t es = type_bytes(c.dtype);
  if (es == 0) throw Failure(ncclInvalidArgument, fmt::format("{}: invalid datatype {}", c.fn, int(c.dtype)));
  if (c.kind == kAllReduce) {
    if (!reducible(c.dtype) || (c.op != ncclSum && c.op != ncclAvg))
      throw Failure(ncclInvalidArgument, fmt::format("{}: the stand-in reduces float32, float64, float16, bfloat16, "
                                                     "int32 and int64 with ncclSum or ncclAvg, not {} with {}",
                                                     c.fn, type_name(c.dtype), op_name(c.op)));
  } else if (c.root < 0 || c.root >= comm.clique->nranks()) {
    throw Failure(ncclInvalidArgument, fmt::format("{}: root {} is not a rank (nranks {})", c.fn, c.root, comm.clique->nranks()));
  }
  try {
    rtune::cuda::sim::check_stream(rt::Stream(stream), c.fn);
  } catch (const std::exception& e) {
    throw Failure(ncclUnhandledCudaError, e.what());
  }
  if (c.count == 0) return;
  const size_t bytes = c.count * es;
  const bool reads_send = c.kind == kAllReduce || comm.clique->rank() == c.root;
  auto check = [&](const void* p, const char* role) {
    const std::string what = fmt::format("{} {}", c.fn, role);
    if (!p) throw Failure(ncclInvalidArgument, fmt::format("{}: {} is null", c.fn, role));
    if (!rt::sim_is_device_address(p))
      throw Failure(ncclInvalidArgument, fmt::format("{}: {} {} is host memory, not a device allocation", c.fn, role, p));
    rtune::sim::detail::check_device_range(p, bytes, what.c_str());  // the hook tests observe
    rt::sim_check_device_range(p, bytes, what.c_str());  // and strict even where no hook is installed
    // Real NCCL checks this only under NCCL_CHECK_POINTERS=1; otherwise the kernel reads the other
    // GPU's memory (peer access) or faults.
    const int dev = rt::sim_allocation_device(p);
    if (dev != comm.device)
      throw Failure(ncclInvalidArgument, fmt::format("{}: {} was allocated on simulated device {}, but the "
                                                     "communicator's device is {}", c.fn, role, dev, comm.device));
  };
  if (reads_send) check(c.send, "sendbuff");
  check(c.recv, "recvbuff");
  const auto* s = static_cast<const std::byte*>(c.send);
  const auto* r = static_cast<const std::byte*>(c.recv);
  if (reads_send && s != r && s < r + bytes && r < s + bytes)
    throw Failure(ncclInvalidArgument, fmt::format("{}: sendbuff and recvbuff overlap without being equal", c.fn));
}

// Every rank publishes its call, then all compare: a rank that issued something else fails them all.
void agree_on_call(ncclComm& comm, const rtune::sim::nccl::CallRecord& mine, const std::string& what) {
  Clique& q = *comm.clique;
  q.slot(q.rank()).record[mine.seq % 2] = mine;
  q.barrier(what);
  const auto& first = q.slot(0).record[mine.seq % 2];
  for (int r = 1; r < q.nranks(); ++r) {
    const auto& other = q.slot(r).record[mine.seq % 2];
    if (other.kind != first.kind || other.count != first.count || other.dtype != first.dtype ||
        (first.kind == kAllReduce && other.op != first.op) || (first.kind == kBroadcast && other.root != first.root))
      throw Failure(ncclInvalidUsage,
                    fmt::format("{}: rank 0 called {} but rank {} called {}; every rank must issue the same collectives "
                                "in the same order (real NCCL would hang or corrupt data)",
                                what, describe(first), r, describe(other)));
  }
}

void move_data(ncclComm& comm, const Collective& c, const std::string& what) {
  Clique& q = *comm.clique;
  const size_t es = type_bytes(c.dtype), per_chunk = rtune::sim::nccl::kStagingBytes / es;
  const bool sends = c.kind == kAllReduce || q.rank() == c.root;
  rt::SimDeviceAccess access({sends ? c.send : nullptr, c.recv}, c.fn);
  std::vector<const std::byte*> slots(size_t(q.nranks()));
  for (int r = 0; r < q.nranks(); ++r) slots[size_t(r)] = q.staging(r);
  for (size_t first = 0; first < c.count; first += per_chunk) {
    const size_t n = std::min(per_chunk, c.count - first);
    if (sends) std::memcpy(q.staging(q.rank()), static_cast<const std::byte*>(c.send) + first * es, n * es);
    q.barrier(what);  // every rank's chunk is staged
    std::byte* out = static_cast<std::byte*>(c.recv) + first * es;
    if (c.kind == kAllReduce)
      reduce(c.dtype, slots.data(), q.nranks(), n, c.op == ncclAvg, out);
    else
      std::memcpy(out, q.staging(c.root), n * es);
    q.barrier(what);  // every rank has read the staging slots: they may be refilled
  }
}

ncclResult_t collective(const Collective& c, ncclComm* comm, cudaStream_t stream) {
  return guarded([&] {
    check_comm(comm, c.fn);
    if (comm->async_error != ncclSuccess)
      throw Failure(comm->async_error, fmt::format("{}: the communicator has an asynchronous error (abort it with "
                                                   "ncclCommAbort): {}", c.fn, comm->async_text));
    check_arguments(*comm, c, stream);
    const uint64_t seq = ++comm->seq;
    const rtune::sim::nccl::CallRecord mine{c.kind, int32_t(c.dtype), int32_t(c.op), c.root, c.count, seq};
    rtune::sim::detail::log_call(c.fn, fmt::format("{} rank {}/{} seq {} device {}", describe(mine), comm->clique->rank(),
                                                   comm->clique->nranks(), seq, comm->device));
    const std::string what = fmt::format("{} (collective #{} on rank {})", c.fn, seq, comm->clique->rank());
    try {
      agree_on_call(*comm, mine, what);
      move_data(*comm, c, what);
    } catch (const Failure& f) {  // the ranks are out of step now: only abort is left
      comm->async_error = f.code;
      comm->async_text = f.what();
      throw;
    }
  });
}

}  // namespace

extern "C" {

ncclResult_t ncclGetVersion(int* version) {
  if (!version) return ncclInvalidArgument;
  *version = NCCL_VERSION_CODE;
  return ncclSuccess;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  return guarded([&] {
    if (!id) throw Failure(ncclInvalidArgument, "ncclGetUniqueId: null id");
    std::random_device rd;
    const uint64_t a = (uint64_t(rd()) << 32) ^ rd(), b = (uint64_t(rd()) << 32) ^ rd() ^ uint64_t(getpid());
    std::memset(id->internal, 0, sizeof id->internal);
    std::memcpy(id->internal, kIdMagic, sizeof kIdMagic);
    const std::string name = fmt::format("{}{}-{:016x}{:016x}", kNamePrefix, getuid(), a, b);
    std::memcpy(id->internal + sizeof kIdMagic, name.c_str(), name.size() + 1);
  });
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank) {
  return guarded([&] {
    if (!comm) throw Failure(ncclInvalidArgument, "ncclCommInitRank: null comm pointer");
    *comm = nullptr;
    if (nranks < 1 || nranks > rtune::sim::nccl::kMaxRanks)
      throw Failure(ncclInvalidArgument, fmt::format("ncclCommInitRank: nranks {} (expected 1 to {})", nranks,
                                                     rtune::sim::nccl::kMaxRanks));
    if (rank < 0 || rank >= nranks)
      throw Failure(ncclInvalidArgument, fmt::format("ncclCommInitRank: rank {} is not in [0, nranks {})", rank, nranks));
    const std::string name = id_name(id);
    const double timeout = timeout_seconds();
    auto c = std::make_unique<ncclComm>();
    c->device = rt::get_device();
    c->clique = std::make_unique<Clique>(name, nranks, rank, c->device, timeout);
    rtune::sim::detail::log_call("ncclCommInitRank", fmt::format("rank {}/{} device {}", rank, nranks, c->device));
    std::lock_guard lock(g_mu);
    g_comms.insert(c.get());
    *comm = c.release();
  });
}

// Neither waits for peers (real ncclCommDestroy may block in its implicit finalize until they are
// there): a peer still waiting on this rank gets ncclRemoteError ("left the communicator").
static ncclResult_t free_comm(ncclComm_t comm, const char* who) {
  return guarded([&] {
    check_comm(comm, who);
    {
      std::lock_guard lock(g_mu);
      g_comms.erase(comm);
    }
    rtune::sim::detail::log_call(who, fmt::format("rank {}/{}", comm->clique->rank(), comm->clique->nranks()));
    delete comm;
  });
}
ncclResult_t ncclCommDestroy(ncclComm_t comm) { return free_comm(comm, "ncclCommDestroy"); }
ncclResult_t ncclCommAbort(ncclComm_t comm) { return free_comm(comm, "ncclCommAbort"); }

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* async_error) {
  return guarded([&] {
    check_comm(comm, "ncclCommGetAsyncError");
    if (!async_error) throw Failure(ncclInvalidArgument, "ncclCommGetAsyncError: null result pointer");
    *async_error = comm->async_error;
    if (comm->async_error != ncclSuccess) tl_last_error = comm->async_text;
  });
}

const char* ncclGetErrorString(ncclResult_t result) {
  switch (result) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
  }
}

// The calling thread's last failure message (real NCCL keeps one per process; per thread suits ranks
// that are threads). The comm argument is not needed for that, as in NCCL.
const char* ncclGetLastError(ncclComm_t) { return tl_last_error.c_str(); }

ncclResult_t ncclCommCount(const ncclComm_t comm, int* count) {
  return guarded([&] {
    check_comm(comm, "ncclCommCount");
    if (!count) throw Failure(ncclInvalidArgument, "ncclCommCount: null count pointer");
    *count = comm->clique->nranks();
  });
}
ncclResult_t ncclCommUserRank(const ncclComm_t comm, int* rank) {
  return guarded([&] {
    check_comm(comm, "ncclCommUserRank");
    if (!rank) throw Failure(ncclInvalidArgument, "ncclCommUserRank: null rank pointer");
    *rank = comm->clique->rank();
  });
}
ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int* device) {
  return guarded([&] {
    check_comm(comm, "ncclCommCuDevice");
    if (!device) throw Failure(ncclInvalidArgument, "ncclCommCuDevice: null device pointer");
    *device = comm->device;
  });
}

ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
  return collective({"ncclAllReduce", kAllReduce, sendbuff, recvbuff, count, datatype, op, 0}, comm, stream);
}

ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, cudaStream_t stream) {
  return collective({"ncclBroadcast", kBroadcast, sendbuff, recvbuff, count, datatype, ncclSum, root}, comm, stream);
}

// Calls inside a group run at once (each blocks until its peers arrive), which serves one collective
// per rank and thread; one thread driving several ranks of a clique inside a group is not supported.
ncclResult_t ncclGroupStart() {
  ++tl_group_depth;
  return ncclSuccess;
}
ncclResult_t ncclGroupEnd() {
  if (tl_group_depth == 0) {
    tl_last_error = "ncclGroupEnd: no matching ncclGroupStart";
    return ncclInvalidUsage;
  }
  --tl_group_depth;
  return ncclSuccess;
}

}  // extern "C"
