#include "finetune/grad_buckets.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "engine/error.h"
#include "kernels/ops.h"

namespace rtune::finetune {

GradBuckets::GradBuckets(dist::DeviceComm& comm, std::vector<Tensor*> params, DType dtype, Device device,
                         size_t cap_bytes)
    : comm_(comm), dtype_(dtype) {
  int64_t filled = 0;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    Tensor* p = *it;
    RTUNE_CHECK(p->dtype() == dtype, "data-parallel: parameter of {} in a {} run", dtype_name(p->dtype()), dtype_name(dtype));
    if (buckets_.empty() || (filled > 0 && size_t(filled + p->numel()) * dtype_size(dtype) > cap_bytes)) {
      if (!buckets_.empty()) buckets_.back().flat = empty({filled}, {dtype, device});
      buckets_.emplace_back();
      filled = 0;
    }
    entries_.push_back({p, buckets_.size() - 1, filled});
    buckets_.back().entries.push_back(entries_.size() - 1);
    filled += p->numel();
  }
  if (!buckets_.empty()) buckets_.back().flat = empty({filled}, {dtype, device});
  for (size_t i = 0; i < entries_.size(); ++i) index_.emplace_back(entries_[i].param->impl(), i);
  std::sort(index_.begin(), index_.end());
  loss_ = empty({1}, {dtype, device});
}

Tensor GradBuckets::slot(const Entry& e) const {
  return buckets_[e.bucket].flat.narrow(0, e.offset, e.param->numel()).view(e.param->shape());
}

void GradBuckets::on_gradient(const TensorImpl* leaf) {
  auto it = std::lower_bound(index_.begin(), index_.end(), std::pair{leaf, size_t(0)});
  if (it == index_.end() || it->first != leaf) return;  // not trained: never communicated
  Entry& e = entries_[it->second];
  Bucket& b = buckets_[e.bucket];
  // DDP's rule too: a parameter used twice in the graph would change after its bucket was sent.
  RTUNE_CHECK(!b.started, "data-parallel: a parameter of shape {} received a gradient after its bucket's all-reduce "
              "started (a parameter used twice in one step)", shape_str(e.param->shape()));
  if (e.ready) return;
  e.ready = true;
  if (++b.ready == b.entries.size()) {
    start(b);
    ++started_early_;
  }
}

void GradBuckets::start(Bucket& b) {
  for (size_t i : b.entries) {
    Tensor dst = slot(entries_[i]);
    kernels::copy(entries_[i].param->grad(), dst);
  }
  b.started = true;
  comm_.allreduce_mean_async(b.flat);
}

Tensor GradBuckets::finish(const Tensor& loss, uint64_t* mark) {
  last_early_ = std::exchange(started_early_, 0);
  for (Bucket& b : buckets_) {
    if (b.started) continue;
    for (size_t i : b.entries) {
      Entry& e = entries_[i];
      if (!e.ready && !e.param->grad().defined()) {  // this rank's graph did not reach it: it adds zero
        Tensor z = empty_like(*e.param);
        kernels::fill(z, 0.0);
        e.param->set_grad(z);
      }
      e.ready = true;
    }
    start(b);
  }
  kernels::copy(loss.reshape({1}), loss_);
  comm_.allreduce_mean_async(loss_);
  comm_.join();
  for (Entry& e : entries_) {
    Tensor g = e.param->grad();
    kernels::copy(slot(e), g);
    e.ready = false;
  }
  for (Bucket& b : buckets_) b.ready = 0, b.started = false;
  *mark = comm_.mark();
  return loss_.view({});
}

}  // namespace rtune::finetune
