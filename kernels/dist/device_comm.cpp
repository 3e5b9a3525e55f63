// device_world(): the process's one GPU communicator (device_comm.h), made by the CUDA backend.
#include "kernels/dist/device_comm.h"

#include <memory>

#include "engine/error.h"
#ifdef RTUNE_HAS_CUDA_BACKEND
#include "kernels/cuda/nccl_comm.h"
#endif

namespace rtune::dist {
namespace {
std::unique_ptr<DeviceComm>& the_device_comm() {
  static std::unique_ptr<DeviceComm> comm;
  return comm;
}
}  // namespace

DeviceComm& device_world(Comm& host, Device device) {
  auto& comm = the_device_comm();
  if (!comm) {
    RTUNE_CHECK(device.is_cuda(), "device_world: {} is not a CUDA device", device.str());
#ifdef RTUNE_HAS_CUDA_BACKEND
    comm = cuda::make_nccl_comm(host, device);
#else
    (void)host;
    fail("data-parallel training on {} needs the CUDA backend, which this rtune was built without", device.str());
#endif
  }
  return *comm;
}

void release_device_world() { the_device_comm().reset(); }

}  // namespace rtune::dist
