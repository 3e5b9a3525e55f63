#include "finetune/data_parallel.h"

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
  params_ = std::move(params);
  if (comm_.size() == 1) return;
  if (device_.is_cuda()) {
    buckets_ = std::make_unique<GradBuckets>(dist::device_world(comm_, device_), params_, dtype_, device_);
    return;
  }
  size_t n = 1;  // the loss rides at the end
  for (Tensor* p : params_) n += size_t(p->numel());
  if (dtype_ == DType::f64) flat_f64_.assign(n, 0.0);
  else flat_f32_.assign(n, 0.0f);
}

std::function<void(const TensorImpl*)> GradientAverager::on_gradient() {
  if (!buckets_) return {};
  return [b = buckets_.get()](const TensorImpl* leaf) { b->on_gradient(leaf); };
}

GradientAverager::Averaged GradientAverager::average(const Tensor& loss) {
  const auto t0 = std::chrono::steady_clock::now();
  Averaged r;
  if (buckets_) {
    r.loss = buckets_->finish(loss, &r.mark);
  } else {
    RTUNE_CHECK(!loss.is_cuda(), "data-parallel: gradients on {} but the averager was made for {}", loss.device().str(),
                device_.str());
    const double mean = dtype_ == DType::f64 ? average_as<double>(loss) : average_as<float>(loss);
    r.loss = full({}, mean, {DType::f64});
  }
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

void GradientAverager::wait_bounded(uint64_t mark) {
  if (!buckets_) return;  // the host all-reduce already waited, bounded (mpi_comm.cpp)
  const auto t0 = std::chrono::steady_clock::now();
  dist::device_world(comm_, device_).wait_bounded("gradient all-reduce", mark);
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string GradientAverager::describe() const {
  if (comm_.size() == 1) return "one rank";
  if (!buckets_) return fmt::format("{}, one all-reduce per step", comm_.describe());
  return fmt::format("{}, {} gradient bucket{} of up to {} MiB started during the backward",
                     dist::device_world(comm_, device_).describe(), buckets_->bucket_count(),
                     buckets_->bucket_count() == 1 ? "" : "s", GradBuckets::kDefaultCapBytes >> 20);
}

double GradientAverager::take_seconds() { return std::exchange(seconds_, 0.0); }

template <class T>
double GradientAverager::average_as(const Tensor& loss) {
  std::vector<T>& flat = [&]() -> std::vector<T>& {
    if constexpr (std::is_same_v<T, double>) return flat_f64_;
    else return flat_f32_;
  }();
  size_t at = 0;
  for (Tensor* p : params_) {
    Tensor g = p->grad();
    if (!g.defined()) {  // a parameter this rank's graph did not reach: it adds zero to the sum
      p->set_grad(zeros(p->shape(), {p->dtype()}));
      g = p->grad();
    }
    // Dense in either memory format: every rank lays a parameter's gradient out alike (same code path).
    RTUNE_CHECK(g.dtype() == dtype_ && (g.is_contiguous() || g.is_contiguous(MemoryFormat::channels_last)),
                "data-parallel: a {} gradient that is not dense", dtype_name(g.dtype()));
    std::memcpy(flat.data() + at, g.data<T>(), size_t(g.numel()) * sizeof(T));
    at += size_t(g.numel());
  }
  flat[at] = T(loss.to(dtype_).item<T>());
  comm_.allreduce_sum(std::span<T>(flat));
  const T inv = T(1) / T(comm_.size());
  at = 0;
  for (Tensor* p : params_) {
    Tensor g = p->grad();
    T* d = g.data<T>();
    for (int64_t i = 0; i < g.numel(); ++i) d[i] = flat[at + size_t(i)] * inv;
    at += size_t(g.numel());
  }
  return double(flat[at] * inv);
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
  // GPU ranks: the tensors on the GPU by NCCL, device to device; host ones (BatchNorm's step counters)
  // by MPI.
  dist::DeviceComm* gpu = nullptr;
  for (auto& [name, t] : tensors) {
    if (!t->is_cuda()) continue;
    if (!gpu) gpu = &dist::device_world(comm, t->device());
    gpu->broadcast_async(*t, 0);
  }
  if (gpu) {
    gpu->join();
    gpu->wait_bounded("broadcast of rank 0's model");
  }
  for (auto& [name, t] : tensors) {
    if (t->is_cuda()) continue;
    RTUNE_CHECK(!t->is_cuda() && t->is_contiguous(), "data-parallel: {} must be a dense CPU tensor", name);
    comm.broadcast(std::span<std::byte>(static_cast<std::byte*>(t->data<void>()), size_t(t->numel()) * dtype_size(t->dtype())),
                   0);
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
