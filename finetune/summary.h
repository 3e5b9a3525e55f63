// `rtune summary`: a per-layer table of a ResNet in the torchsummary / torchstat style, computed
// analytically from the module tree and the input size (no forward pass, so resnet152 at 224 is instant).
// Rows are torchvision module paths in forward order (conv1, bn1, relu, maxpool, layer1.0.conv1, …, fc).
// What is counted:
//   params  each module's own parameters (BN running stats are buffers, not parameters), as
//           sum(p.numel() for p in model.parameters()).
//   MACs    multiply-accumulates of Conv2d (C_out·H_out·W_out · C_in/groups·k_h·k_w) and Linear (in·out),
//           the convention of torchvision's model table and fvcore/ptflops' conv+linear counts. BatchNorm,
//           ReLU, pooling and the residual add are element-wise and listed with 0 MACs.
//   activations  the sum of every row's output elements for one image (torchsummary's "forward pass
//           size"; its "forward/backward pass size" is twice this).
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "models/resnet.h"

namespace rtune::finetune {

struct LayerRow {
  std::string name;    // torchvision module path, e.g. "layer2.0.downsample.0"
  std::string type;    // Conv2d, BatchNorm2d, ReLU, MaxPool2d, AdaptiveAvgPool2d, Linear
  std::string detail;  // e.g. "64->128 k3 s2 p1"
  Shape output;        // per image: {C, H, W} or {features}
  int64_t params = 0, macs = 0;
};

struct ModelSummary {
  std::string arch;
  int64_t width = 0, num_classes = 0, input_h = 0, input_w = 0;
  DType dtype = DType::f32;
  std::vector<LayerRow> rows;
  int64_t params = 0, trainable_params = 0;  // trainable: requires_grad
  int64_t buffer_elements = 0, state_dict_keys = 0;
  int64_t macs = 0;                 // per image
  int64_t activation_elements = 0;  // per image
  int64_t param_bytes = 0, buffer_bytes = 0;
  int64_t activation_bytes() const { return activation_elements * int64_t(dtype_size(dtype)); }
};

// requires: input_h, input_w large enough that no layer's output is empty (>= 1 pixel after layer4).
ModelSummary summarize(models::ResNet& model, int64_t input_h, int64_t input_w);

// The table and totals as printed by `rtune summary`.
std::string format_summary(const ModelSummary& s, bool per_layer = true);

}  // namespace rtune::finetune
