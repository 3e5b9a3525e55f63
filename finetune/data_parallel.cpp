#include "finetune/data_parallel.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <utility>
#include <cstring>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <omp.h>

#include "engine/error.h"
#include "kernels/cpu/backend.h"
#include "kernels/dist/device_comm.h"
#include "kernels/ops.h"

namespace rtune::finetune {

GradientAverager::GradientAverager(dist::Comm& comm, DType dtype, Device device)
    : comm_(comm), dtype_(dtype), device_(device) {}
GradientAverager::~GradientAverager() = default;

void GradientAverager::set_params(std::vector<Tensor*> params) {
  buckets_.reset();
  if (comm_.size() > 1)
    buckets_ = std::make_unique<GradBuckets>(dist::device_world(comm_, device_), std::move(params), dtype_, device_);
}

std::function<void(const TensorImpl*)> GradientAverager::on_gradient() {
  if (!buckets_) return {};
  // Timed: on CPU ranks a completed bucket's all-reduce runs inside this call, in the backward.
  return [this](const TensorImpl* leaf) {
    const auto t0 = std::chrono::steady_clock::now();
    buckets_->on_gradient(leaf);
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
}

GradientAverager::Averaged GradientAverager::average(const Tensor& loss) {
  RTUNE_CHECK(buckets_, "data-parallel: average() with one rank, or before set_params()");
  const auto t0 = std::chrono::steady_clock::now();
  Averaged r;
  r.loss = buckets_->finish(loss, &r.mark);
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

void GradientAverager::wait_bounded(uint64_t mark) {
  const auto t0 = std::chrono::steady_clock::now();
  dist::device_world(comm_, device_).wait_bounded("gradient all-reduce", mark);
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double GradientAverager::take_seconds() { return std::exchange(seconds_, 0.0); }

std::string GradientAverager::describe() const {
  if (!buckets_) return "one rank";
  return fmt::format("{}, {} gradient bucket{} of up to {} MiB started during the backward",
                     dist::device_world(comm_, device_).describe(), buckets_->bucket_count(),
                     buckets_->bucket_count() == 1 ? "" : "s", GradBuckets::kDefaultCapBytes >> 20);
}

ClassMetrics sum_over_ranks(dist::Comm& comm, const ClassMetrics& mine) {
  if (comm.size() == 1) return mine;
  ClassMetrics::Totals t = mine.totals();
  std::vector<int64_t> counts = {t.count, t.top1, t.top5};
  counts.insert(counts.end(), t.confusion.begin(), t.confusion.end());
  comm.allreduce_sum(std::span<int64_t>(counts));
  std::vector<double> loss = {t.loss_sum};
  comm.allreduce_sum(std::span<double>(loss));
  t.count = counts[0], t.top1 = counts[1], t.top5 = counts[2], t.loss_sum = loss[0];
  std::copy(counts.begin() + 3, counts.end(), t.confusion.begin());
  return ClassMetrics::from_totals(mine.num_classes(), std::move(t));
}


namespace {
void broadcast_tensors(dist::Comm& comm, const std::vector<std::pair<std::string, Tensor*>>& tensors) {
  // GPU ranks: the tensors on the GPU by NCCL, device to device; host ones (BatchNorm's step counters) by MPI.
  std::vector<dist::DeviceComm*> used;
  for (auto& [name, t] : tensors) {
    dist::DeviceComm& c = dist::device_world(comm, t->device());
    c.broadcast_async(*t, 0);
    if (std::find(used.begin(), used.end(), &c) == used.end()) used.push_back(&c);
  }
  for (dist::DeviceComm* c : used) {
    c->join();
    c->wait_bounded("broadcast of rank 0's model");
  }
}

// FNV-1a, 64 bits: a digest to compare between ranks, not a defence against anyone.
struct Digest {
  uint64_t h = 1469598103934665603ull;
  void add(std::string_view s) {
    for (char c : s) h = (h ^ uint8_t(c)) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;  // a separator: ("ab","c") differs from ("a","bc")
  }
  std::string hex() const { return fmt::format("{:016x}", h); }
};
}  // namespace

void broadcast_buffers(dist::Comm& comm, models::ResNet& model) {
  if (comm.size() > 1) broadcast_tensors(comm, model.named_buffers());
}

void broadcast_model(dist::Comm& comm, models::ResNet& model) {
  if (comm.size() > 1) broadcast_tensors(comm, model.state_dict());
}

std::string data_fingerprint(const io::Dataset& train, const io::Dataset* val, const std::vector<std::string>& classes) {
  Digest d;
  for (const std::string& c : classes) d.add(c);
  for (const io::Dataset* ds : {&train, val}) {
    if (!ds) continue;
    d.add(std::to_string(ds->samples.size()));
    for (const io::Sample& s : ds->samples) d.add(s.path.string()), d.add(std::to_string(s.label));
  }
  return fmt::format("{} training images, digest {}", train.samples.size(), d.hex());
}

std::string model_fingerprint(models::ResNet& model) {
  Digest d;
  for (auto& [name, t] : model.state_dict()) {
    d.add(name);
    d.add(dtype_name(t->dtype()));
    for (int64_t s : t->shape()) d.add(std::to_string(s));
  }
  return fmt::format("{}, {} classes, digest {}", model.config().arch, model.config().num_classes, d.hex());
}

int share_cores_between_ranks(const dist::Comm& comm, int threads) {
  if (threads <= 0 && comm.size() > 1) {
    const int on_this_machine = std::min(dist::launched_local_size(), comm.size());
    threads = std::max(1, int(std::thread::hardware_concurrency()) / on_this_machine);
  }
  if (comm.size() > 1 && !cpu::compute_threads_chosen()) omp_set_num_threads(threads);
  return threads;
}

void check_same_on_every_rank(dist::Comm& comm, const std::string& what, const std::string& fingerprint) {
  if (comm.size() == 1) return;
  const std::vector<std::string> all = comm.allgather(fingerprint);
  std::string differ;
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0]) differ += (differ.empty() ? "" : ", ") + std::to_string(r);
  if (differ.empty()) return;
  const std::string& other = all[std::stoul(differ.substr(0, differ.find(',')))];
  std::string detail = fmt::format("{} vs {}", all[0], other);
  // Arguments come as JSON objects: name the keys that differ rather than print both whole.
  const nlohmann::json a = nlohmann::json::parse(all[0], nullptr, false), b = nlohmann::json::parse(other, nullptr, false);
  if (a.is_object() && b.is_object()) {
    detail.clear();
    for (auto it = a.begin(); it != a.end(); ++it)
      if (!b.contains(it.key()) || b.at(it.key()) != it.value())
        detail += fmt::format("{}{}: {} vs {}", detail.empty() ? "" : "; ", it.key(), it.value().dump(),
                              b.contains(it.key()) ? b.at(it.key()).dump() : "absent");
  }
  fail("data-parallel run: the {} of rank(s) {} differ from rank 0's ({}); every rank must start the same run", what,
       differ, detail);
}

}  // namespace rtune::finetune
