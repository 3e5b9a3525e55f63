// device_world(): the process's communicators for device tensors (device_comm.h): NCCL for its GPU, made
// by the CUDA backend, and the MPI one for host tensors.
#include "kernels/dist/device_comm.h"

#include <map>
#include <memory>
#include <span>

#include <fmt/format.h>

#include "engine/error.h"
#ifdef RTUNE_HAS_CUDA_BACKEND
#include "kernels/cuda/nccl_comm.h"
#endif

namespace rtune::dist {
namespace {

// Host tensors over the host communicator: the collective is done when the call returns.
class HostTensorComm final : public DeviceComm {
 public:
  explicit HostTensorComm(Comm& host) : host_(host) {}
  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  void allreduce_mean_async(Tensor& t) override {
    switch (dense(t, "all-reduce").dtype()) {
      case DType::f32: return mean(std::span<float>(t.data<float>(), size_t(t.numel())));
      case DType::f64: return mean(std::span<double>(t.data<double>(), size_t(t.numel())));
      default: fail("all-reduce of {} host tensors: float32 or float64 only", dtype_name(t.dtype()));
    }
  }
  void broadcast_async(Tensor& t, int root) override {
    dense(t, "broadcast");
    host_.broadcast(std::span<std::byte>(static_cast<std::byte*>(t.raw_data()), size_t(t.numel()) * dtype_size(t.dtype())),
                    root);
  }
  void join() override {}
  uint64_t mark() override { return 0; }
  void wait_bounded(const char*, uint64_t) override {}
  std::string describe() const override { return fmt::format("{}, on the host", host_.describe()); }

 private:
  // Dense in either memory format: every rank lays the tensor out alike (the same code made it).
  static const Tensor& dense(const Tensor& t, const char* what) {
    RTUNE_CHECK(t.device().is_cpu() && (t.is_contiguous() || t.is_contiguous(MemoryFormat::channels_last)),
                "{}: a dense CPU tensor, got {}", what, t.str());
    return t;
  }
  template <class T>
  void mean(std::span<T> v) {
    host_.allreduce_sum(v);
    const T inv = T(1) / T(host_.size());
    for (T& x : v) x *= inv;
  }
  Comm& host_;
};

// The process's one GPU communicator and the GPU it was made for.
struct DeviceWorld {
  std::unique_ptr<DeviceComm> comm;
  Device device;
};
DeviceWorld& the_device_world() {
  static DeviceWorld w;
  return w;
}
}  // namespace

DeviceComm& device_world(Comm& host, Device device) {
  if (device.is_cpu()) {
    static std::map<Comm*, std::unique_ptr<HostTensorComm>> on_host;  // one per host communicator
    auto& c = on_host[&host];
    if (!c) c = std::make_unique<HostTensorComm>(host);
    return *c;
  }
  DeviceWorld& w = the_device_world();
  if (!w.comm) {
#ifdef RTUNE_HAS_CUDA_BACKEND
    w.comm = cuda::make_nccl_comm(host, device);
    w.device = device;
#else
    (void)host;
    fail("data-parallel training on {} needs the CUDA backend, which this rtune was built without", device.str());
#endif
  }
  // One GPU per process: the communicator's stream, events and NCCL rank belong to the first GPU asked for.
  RTUNE_CHECK(w.device == device, "the GPU communicator of this process serves {}, not {}: one GPU per rank",
              w.device.str(), device.str());
  return *w.comm;
}

void release_device_world() { the_device_world().comm.reset(); }

}  // namespace rtune::dist
