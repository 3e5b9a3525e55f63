// Included by test binaries of CUDA cases only: exit 77 (ctest: skipped) at start-up when built for a
// real GPU and none is present; never in the simulated build, which always has its one device.
#pragma once
#include <cstdio>
#include <cstdlib>

#include "kernels/cuda/runtime.h"

namespace rtune::cudatest {

inline const bool kDevicePresent = [] {
  if (!cuda::rt::device_present()) {
    std::fprintf(stderr, "no CUDA device present: CUDA backend tests skipped\n");
    std::exit(77);
  }
  return true;
}();

}  // namespace rtune::cudatest
