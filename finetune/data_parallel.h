// What makes N ranks train as one (issue 20): after each backward, every trainable parameter's gradient
// becomes the mean over the ranks (PyTorch DDP's all-reduce / N), with the step's loss riding in the same
// all-reduce; BatchNorm buffers follow rank 0 before an evaluation (DDP's broadcast_buffers); the
// metrics of an epoch are summed over the ranks. With one rank every call returns at once.
// Frozen parameters are never communicated: only the optimizer's parameters are in the buffer.
#pragma once
#include <vector>

#include "engine/tensor.h"
#include "finetune/metrics.h"
#include "io/data/dataset.h"
#include "kernels/dist/comm.h"
#include "models/resnet.h"

namespace rtune::finetune {

class GradientAverager {
 public:
  GradientAverager(dist::Comm& comm, DType dtype) : comm_(comm), dtype_(dtype) {}
  // The parameters whose gradients are averaged (a phase's trainable set); sizes the buffer once.
  void set_params(std::vector<Tensor*> params);
  // Replaces each parameter's gradient by the ranks' mean, in place; returns the ranks' mean of `loss`
  // (a scalar on the host). One all-reduce of (sum of trainable sizes + 1) elements per step.
  double average(const Tensor& loss);
  // Seconds spent in average() since the last call (the all-reduce and its copies), for the log.
  double take_seconds();

 private:
  template <class T> double average_as(const Tensor& loss);
  dist::Comm& comm_;
  DType dtype_;
  std::vector<Tensor*> params_;
  std::vector<float> flat_f32_;   // reused step after step: no allocation per step
  std::vector<double> flat_f64_;
  double seconds_ = 0;
};

// The metrics of every rank's share, summed (counts, confusion matrix, loss sums).
ClassMetrics sum_over_ranks(dist::Comm& comm, const ClassMetrics& mine);
// Rank 0's BatchNorm running statistics on every rank (the model is on the CPU).
void broadcast_buffers(dist::Comm& comm, models::ResNet& model);
// Rank 0's parameters and buffers on every rank (the model is on the CPU).
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
