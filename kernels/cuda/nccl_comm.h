// The NCCL communicator behind dist::DeviceComm (kernels/dist/device_comm.h); on the simulated device the
// NCCL calls go to its stand-in (kernels/cuda/sim/standin_nccl.cpp).
#pragma once
#include <memory>

#include "kernels/dist/device_comm.h"

namespace rtune::cuda {

// A collective: rank 0 makes the unique id, `host` broadcasts it, every rank joins (ncclCommInitRank).
std::unique_ptr<dist::DeviceComm> make_nccl_comm(dist::Comm& host, Device device);

}  // namespace rtune::cuda
