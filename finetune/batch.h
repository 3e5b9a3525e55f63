// From a loader batch (uint8 NHWC + int64 labels) to the model's inputs: a float [N, 3, H, W] tensor
// computed as torchvision's ToTensor + Normalize do it (x / 255 in float32, then (x - mean) / std in
// float32), so an f32 batch here equals torch's default_collate of the transformed samples bit for bit.
// The bytes travel to the device as uint8 (a quarter of the float traffic) and are normalised there
// by kernels::normalize_images.
#pragma once
#include "engine/nn/autocast.h"
#include "engine/tensor.h"
#include "io/data/loader.h"
#include "io/transforms/normalize.h"

namespace rtune::finetune {

// requires: b.images holds b.size * height * width * 3 bytes; dtype f32, f64, bf16 or f16.
// ensures: a tensor [N, 3, H, W] of `dtype` on `device`, dense in `fmt` (NCHW or channels-last); each
// value is the float32 result rounded to `dtype` (f64: widened).
// On a CUDA device the bytes are uploaded asynchronously (kernels::upload): keep `b` unchanged until
// a kernels::fence(device) taken after this call is reached.
Tensor images_to_tensor(const io::Batch& b, const io::Normalize& norm, DType dtype = DType::f32,
                        Device device = Device::cpu(), MemoryFormat fmt = MemoryFormat::contiguous);
// The model's input as rtune computes it: on CUDA with fp32 master weights, the autocast dtype and
// layout of precision `p` (engine/nn/autocast.h: bf16 or fp32, channels-last), so the first conv
// casts nothing; otherwise `dtype` NCHW.
Tensor input_tensor(const io::Batch& b, const io::Normalize& norm, DType dtype, Device device, nn::Precision p);
// The host memory a loader feeding `device` should fill: pinned (page-locked) for CUDA, else nullptr (heap).
const io::HostMemory* pinned_host_memory(Device device);
// A CPU tensor in pinned memory on a CUDA run (copies between it and the device do not make the host
// wait), else heap.
Tensor host_buffer(const Shape& shape, DType dt, Device device);
// int64 [N] class indices on `device`.
Tensor labels_to_tensor(const io::Batch& b, Device device = Device::cpu());

}  // namespace rtune::finetune
