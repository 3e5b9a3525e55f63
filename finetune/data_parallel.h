// What makes N ranks train as one (issue 20): in each backward, every trainable parameter's gradient
// becomes the mean over the ranks (PyTorch DDP's all-reduce / N, in buckets: grad_buckets.h), and so does
// the step's loss; BatchNorm buffers follow rank 0 before an evaluation (DDP's broadcast_buffers); the
// metrics of an epoch are summed over the ranks. With one rank every call returns at once.
// Frozen parameters are never communicated: only the optimizer's parameters are in the buckets.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "finetune/grad_buckets.h"
#include "finetune/metrics.h"
#include "io/data/dataset.h"
#include "kernels/dist/comm.h"
#include "models/resnet.h"

namespace rtune::finetune {

// The gradients travel in buckets started during the backward (grad_buckets.h, DDP's reducer): on GPU
// ranks NCCL all-reduces queued on the device, the host waiting for them, bounded, only when it reads the
// step's loss; on CPU ranks MPI all-reduces on the host, done when the bucket is.
class GradientAverager {
 public:
  GradientAverager(dist::Comm& comm, DType dtype, Device device);
  ~GradientAverager();
  // The parameters whose gradients are averaged (a phase's trainable set); sizes the buffers once.
  void set_params(std::vector<Tensor*> params);
  // What loss.backward() runs under (engine/autograd.h LeafGradHook): it starts each bucket's all-reduce
  // once its gradients are final; empty with one rank.
  std::function<void(const TensorImpl*)> on_gradient();
  struct Averaged {
    Tensor loss;        // the ranks' mean loss, 0-d, on the loss's device
    uint64_t mark = 0;  // wait_bounded(mark) before reading it on the host
  };
  // After the backward: each parameter's gradient becomes the ranks' mean, in place (queued on GPU ranks).
  // With one rank, never called.
  Averaged average(const Tensor& loss);
  // Bounded host wait for an average() (a dead or hung peer ends the job instead of hanging it).
  void wait_bounded(uint64_t mark);
  // Seconds the host spent averaging since the last call (in the backward's hook, average() and
  // wait_bounded()), for the log.
  double take_seconds();
  // "NCCL 2.28.9 on cuda:1, 2 ranks, 3 gradient buckets of up to 25 MiB ..." for the log.
  std::string describe() const;

 private:
  dist::Comm& comm_;
  DType dtype_;
  Device device_;
  std::unique_ptr<GradBuckets> buckets_;
  double seconds_ = 0;
};

// The metrics of every rank's share, summed (counts, confusion matrix, loss sums).
ClassMetrics sum_over_ranks(dist::Comm& comm, const ClassMetrics& mine);
// Rank 0's BatchNorm running statistics on every rank (MPI on CPU ranks, NCCL on GPU ranks).
void broadcast_buffers(dist::Comm& comm, models::ResNet& model);
// Rank 0's parameters and buffers on every rank (MPI on CPU ranks, NCCL on GPU ranks).
void broadcast_model(dist::Comm& comm, models::ResNet& model);
// Short digests of what every rank must agree on: the samples (paths, labels) and class names; the
// model's parameter and buffer names, shapes and dtypes.
std::string data_fingerprint(const io::Dataset& train, const io::Dataset* val, const std::vector<std::string>& classes);
std::string model_fingerprint(models::ResNet& model);
// The loader threads of one rank: `threads` when given (> 0); else, with several ranks, this machine's
// cores shared by the ranks on it (OMPI_COMM_WORLD_LOCAL_SIZE), so two ranks on one machine do not both
// take every core, and the kernels' threads the same unless --compute-threads or OMP_NUM_THREADS chose them.
int share_cores_between_ranks(const dist::Comm& comm, int threads);
// Fails on every rank, naming the ranks, when their `fingerprint`s (arguments, data, model) differ.
void check_same_on_every_rank(dist::Comm& comm, const std::string& what, const std::string& fingerprint);

}  // namespace rtune::finetune
