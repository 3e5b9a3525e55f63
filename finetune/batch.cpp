#include "finetune/batch.h"
#include <algorithm>
#include <memory>
#include "kernels/ops.h"

namespace rtune::finetune {

Tensor images_to_tensor(const io::Batch& b, const io::Normalize& norm, DType dtype, Device device, MemoryFormat fmt) {
  const int64_t n = b.size, h = b.height, w = b.width, bytes = n * h * w * 3;
  RTUNE_CHECK(int64_t(b.images.size()) == bytes, "images_to_tensor: batch holds {} bytes, {}x{}x{}x3 needs {}",
              b.images.size(), n, h, w, bytes);
  RTUNE_CHECK(dtype == DType::f32 || dtype == DType::f64 || dtype == DType::bf16 || dtype == DType::f16,
              "images_to_tensor: dtype must be float32, float64, bfloat16 or float16, got {}", dtype_name(dtype));
  // The loader's interleaved HWC bytes are exactly a channels-last uint8 [N, 3, H, W] tensor: viewed in
  // place (no host copy), they are normalised on the CPU or copied as they are (pinned, when the
  // loader was given pinned_host_memory()) to the device.
  const Tensor bytes_view =
      from_storage(Storage::wrap(const_cast<uint8_t*>(b.images.data()), size_t(bytes), Device::cpu(), nullptr),
                   {n, 3, h, w}, DType::u8, MemoryFormat::channels_last);
  Tensor images = bytes_view;
  if (device.is_cuda()) {  // queued behind the compute: the host does not wait for the device here
    images = empty({n, 3, h, w}, {DType::u8, device, MemoryFormat::channels_last});
    kernels::upload(bytes_view, images);
  }
  Tensor out = empty({n, 3, h, w}, {dtype, device, fmt});
  kernels::normalize_images(images, norm.mean, norm.std, out);
  return out;
}

Tensor input_tensor(const io::Batch& b, const io::Normalize& norm, DType dtype, Device device, nn::Precision p) {
  nn::ComputeMode mode;
  if (dtype == DType::f32 && nn::compute_mode_for(p, device, mode))
    return images_to_tensor(b, norm, mode.dtype, device, mode.format);
  return images_to_tensor(b, norm, dtype, device);
}

const io::HostMemory* pinned_host_memory(Device device) {
  static const io::HostMemory pinned{kernels::pinned_alloc, kernels::pinned_free};
  return device.is_cuda() ? &pinned : nullptr;
}

Tensor host_buffer(const Shape& shape, DType dt, Device device) {
  if (!device.is_cuda()) return empty(shape, {dt});
  const size_t bytes = size_t(std::max<int64_t>(shape_numel(shape), 1)) * dtype_size(dt);
  void* p = kernels::pinned_alloc(bytes);
  return from_storage(Storage::wrap(p, bytes, Device::cpu(), std::shared_ptr<void>(p, kernels::pinned_free)), shape, dt);
}

Tensor labels_to_tensor(const io::Batch& b, Device device) {
  RTUNE_CHECK(int64_t(b.labels.size()) == b.size, "labels_to_tensor: {} labels for a batch of {}", b.labels.size(), b.size);
  Tensor t = from_vector_i64(b.labels, {b.size});
  if (device.is_cpu()) return t;
  Tensor d = empty({b.size}, {DType::i64, device});
  kernels::upload(t, d);  // pageable: staged by the driver, so `t` may go at once
  return d;
}

}  // namespace rtune::finetune
