// From a loader batch (uint8 NHWC + int64 labels) to the model's inputs: a float NCHW tensor computed
// as torchvision's ToTensor + Normalize do it (x / 255 in float32, then (x - mean) / std in float32),
// so a batch here equals torch's default_collate of the transformed samples bit for bit.
#pragma once
#include "engine/tensor.h"
#include "io/data/loader.h"
#include "io/transforms/tensor.h"

namespace rtune::train {

// requires: b.images holds b.size * height * width * 3 bytes. ensures: CPU tensor [N, 3, H, W] of
// `dtype` (f32 or f64; f64 values are the float32 results widened), then moved to `device`.
Tensor images_to_tensor(const io::Batch& b, const io::Normalize& norm, DType dtype = DType::f32,
                        Device device = Device::cpu());
// int64 [N] class indices on `device`.
Tensor labels_to_tensor(const io::Batch& b, Device device = Device::cpu());

}  // namespace rtune::train
