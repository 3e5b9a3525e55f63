// Collectives on the tensors of the ranks' devices (issue 20; docs/distributed.md).
// GPU ranks: one GPU per rank, NCCL underneath (a stand-in on the simulated device; semantics in
// docs/cuda-libs-semantics.md §14). Every call is ordered after the work already queued on the CUDA
// backend's stream and runs on a stream of its own, so an all-reduce overlaps whatever the backend queues
// next (the rest of the backward); join() makes the backend's stream wait for it, on the device. Nothing
// blocks the host except wait_bounded(), which gives up, instead of hanging, when a peer died or hangs.
// CPU ranks: the same calls on host tensors over the MPI communicator (comm.h), done when they return
// (its waits are bounded already): one way for the trainer to average gradients on either device.
// Like the host collectives, every rank must make the same calls in the same order.
#pragma once
#include <memory>
#include <string>

#include "engine/tensor.h"
#include "kernels/dist/comm.h"

namespace rtune::dist {

class DeviceComm {
 public:
  virtual ~DeviceComm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // In place: every rank's dense tensor becomes the elementwise mean over the ranks (ncclAvg).
  virtual void allreduce_mean_async(Tensor& t) = 0;
  // In place: rank `root`'s tensor (dense) on every rank.
  virtual void broadcast_async(Tensor& t, int root) = 0;
  // The backend's stream waits (on the device) for every collective started so far.
  virtual void join() = 0;
  // A point in the sequence of collectives: everything started so far. The last few marks stay waitable
  // (enough for the two steps a trainer has in flight).
  virtual uint64_t mark() = 0;
  // The host waits until the collectives before mark `m` have finished, polling NCCL's asynchronous error;
  // on an error, or past collective_timeout_seconds(), it aborts the communicator and throws naming the
  // wait (`what`). The caller's error path then ends the job (abort_job).
  virtual void wait_bounded(const char* what, uint64_t m) = 0;
  void wait_bounded(const char* what) { wait_bounded(what, mark()); }
  // "NCCL 2.28.3 on cuda:1, 2 ranks": for the log.
  virtual std::string describe() const = 0;
};

// The communicator of this job's ranks for tensors on `device` (this rank's GPU, or the CPU), made on first
// call. For a GPU that is a collective (every rank calls it at the same point): rank 0 creates the NCCL
// unique id and `host` broadcasts it; it throws in a build without the CUDA backend. A later call for another
// GPU throws (one GPU per process: the communicator, its stream and its NCCL rank belong to the first).
DeviceComm& device_world(Comm& host, Device device);
// Frees the GPU one (ncclCommDestroy) if it was made; called by finalize() before MPI ends.
void release_device_world();

}  // namespace rtune::dist
