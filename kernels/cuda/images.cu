// CUDA normalize_images with the CPU oracle's semantics (kernels/cpu/images.cpp: torchvision's
// ToTensor + Normalize, (float(v) / 255 - mean[c]) / std[c] in float32, rounded to the output dtype).
// The loader's uint8 batch is moved to the device as is (a quarter of the float bytes) and expanded
// here. One thread per output element in the output's memory order, so stores are coalesced in both
// layouts; the byte reads are strided by 3 for NCHW outputs. The façade has checked the arguments.
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/handles.h"
#include "kernels/cuda/kernel_util.cuh"

namespace rtune::cuda {

namespace {

struct ChannelNorm {
  float mean[3];
  float stddev[3];
};

template <class T>
RT_GLOBAL void normalize_images_kernel(const uint8_t* x, T* y, int64_t n, int64_t plane, bool channels_last,
                                       ChannelNorm p) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int c;
    int64_t src;
    if (channels_last) {  // output memory order is the input's interleaved order
      c = int(i % 3);
      src = i;
    } else {  // i = (image * 3 + c) * plane + pixel
      int64_t q = i / plane, pixel = i - q * plane, image = q / 3;
      c = int(q - image * 3);
      src = (image * plane + pixel) * 3 + c;
    }
    float v = (float(x[src]) / 255.0f - p.mean[c]) / p.stddev[c];
    y[i] = store<T>(v);
  }
}

}  // namespace

void normalize_images(const Tensor& images, const std::array<float, 3>& mean, const std::array<float, 3>& stddev,
                      Tensor& y) {
  const int64_t n = y.numel(), plane = images.size(2) * images.size(3);
  if (n == 0) return;
  // When both layouts describe the same memory (1×1 images), either indexing is right.
  const bool channels_last = !y.is_contiguous();
  ChannelNorm p{{mean[0], mean[1], mean[2]}, {stddev[0], stddev[1], stddev[2]}};
  dispatch_floating("normalize_images", y, [&](auto tag) {
    using T = decltype(tag);
    launch(normalize_images_kernel<T>, grid_for(n, kThreads), kThreads, 0, stream(), dptr<const uint8_t>(images),
           dptr<T>(y), n, plane, channels_last, p);
  });
}

}  // namespace rtune::cuda
