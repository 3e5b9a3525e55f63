// Device memory (kernels/cuda/allocator.cpp, kernels/cuda/transfer.cpp): the caching allocator reuses
// freed blocks, and uploads/downloads queue with the compute from pinned and pageable memory. CUDA
// cases only, so built with a CUDA backend only.
#include "kernels/cuda/allocator.h"
#include "kernels/ops.h"
#include "tests/cuda/skip_without_device.h"
#include "tests/ops/ops_test_util.h"

using namespace rtune;
using namespace rtune::cudatest;
using namespace rtune::opstest;
namespace K = rtune::kernels;

TEST_CASE("caching allocator: freed blocks are reused without new device allocations") {
  {  // a first launch too: it creates the stream's handles, whose workspaces are device allocations
    Tensor warm = empty({1000}, {DType::f32, gpu()});
    warm.fill_(1.0);
  }
  uint64_t before = cuda::allocator_stats().device_mallocs;
  for (int i = 0; i < 5; ++i) {
    Tensor t = empty({1000}, {DType::f32, gpu()});
    t.fill_(1.0);
  }
  CHECK(cuda::allocator_stats().device_mallocs == before);
  CHECK(cuda::round_size(1) == 512);
  CHECK(cuda::round_size((size_t(1) << 20) + 1) == (size_t(2) << 20));
}

TEST_CASE("upload / download queued with the compute, from pinned and pageable memory, and fences") {
  Rng r(91);
  Tensor host = randn_f({2, 3, 4, 5}, r, MemoryFormat::channels_last);
  // Pinned host memory, as the loader's batches and the trainer's loss buffers use.
  void* pinned = K::pinned_alloc(size_t(host.numel()) * sizeof(float));
  {
    Tensor pin = empty(host.shape(), {DType::f32, Device::cpu(), MemoryFormat::channels_last});
    Tensor d = empty(host.shape(), {DType::f32, gpu(), MemoryFormat::channels_last});
    K::upload(host, d);  // pageable
    K::fence(gpu()).wait();
    check_dev(d, host, 0, 0);
    Tensor back = from_storage(Storage::wrap(pinned, size_t(host.numel()) * sizeof(float), Device::cpu(), nullptr),
                               host.shape(), DType::f32, MemoryFormat::channels_last);
    K::download(d, back);
    K::fence(gpu()).wait();
    CHECK(back.to_vector<float>() == host.to_vector<float>());
    // The CPU "device": plain copies, fences always reached.
    K::upload(host, pin);
    K::fence(Device::cpu()).wait();
    CHECK(pin.to_vector<float>() == host.to_vector<float>());
    // Misuse: different strides, a device tensor on the host side, shape mismatch.
    Tensor nchw = empty(host.shape(), {DType::f32, gpu()});
    CHECK_THROWS_WITH_AS(K::upload(host, nchw), doctest::Contains("same strides"), Error);
    CHECK_THROWS_WITH_AS(K::upload(d, nchw), doctest::Contains("CPU tensor"), Error);
    Tensor small = empty({2, 3}, {DType::f32, gpu()});
    CHECK_THROWS_AS(K::download(small, pin), Error);
  }
  K::pinned_free(pinned);
}
