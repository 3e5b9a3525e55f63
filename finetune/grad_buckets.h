// Gradient buckets of GPU ranks (issue 20), as PyTorch DDP's reducer: the trainable parameters, in reverse
// order of the model's (the order the backward reaches them), are grouped into buckets of about 25 MiB
// (DDP's bucket_cap_mb default). When the backward has accumulated every gradient of a bucket, the
// gradients are copied into the bucket's flat buffer and its all-reduce starts on the communicator's
// stream, while the backend goes on with the rest of the backward. finish() starts what is left (and the
// loss), makes the backend's stream wait for the collectives and copies the means back into the gradients:
// nothing waits on the host, nothing is allocated per step.
#pragma once
#include <cstddef>
#include <vector>

#include "engine/tensor.h"
#include "kernels/dist/device_comm.h"

namespace rtune::finetune {

class GradBuckets {
 public:
  static constexpr size_t kDefaultCapBytes = size_t(25) << 20;
  GradBuckets(dist::DeviceComm& comm, std::vector<Tensor*> params, DType dtype, Device device,
              size_t cap_bytes = kDefaultCapBytes);
  // The engine's post-accumulate hook (LeafGradHook): `leaf`'s gradient is final for this step.
  void on_gradient(const TensorImpl* leaf);
  // After the backward: every gradient becomes the ranks' mean (queued); returns the ranks' mean of `loss`
  // (0-d, on the device) and the mark to wait for before reading it.
  Tensor finish(const Tensor& loss, uint64_t* mark);
  size_t bucket_count() const { return buckets_.size(); }
  // Buckets whose all-reduce started during the last backward (before finish()): the overlap achieved.
  size_t started_early() const { return last_early_; }

 private:
  struct Entry {
    Tensor* param;
    size_t bucket;
    int64_t offset;  // in the bucket's flat buffer, in elements
    bool ready = false;
  };
  struct Bucket {
    Tensor flat;
    std::vector<size_t> entries;
    size_t ready = 0;
    bool started = false;
  };
  void start(Bucket& b);
  Tensor slot(const Entry& e) const;  // the entry's place in its bucket, shaped as the parameter

  dist::DeviceComm& comm_;
  DType dtype_;
  std::vector<Entry> entries_;
  std::vector<Bucket> buckets_;
  std::vector<std::pair<const TensorImpl*, size_t>> index_;  // parameter -> entry, sorted by address
  Tensor loss_;
  size_t started_early_ = 0, last_early_ = 0;
};

}  // namespace rtune::finetune
