#include "finetune/summary.h"
#include <map>

namespace rtune::finetune {

namespace {
using models::ResNet;

int64_t numel_of(const Tensor& t) { return t.defined() ? t.numel() : 0; }

// Output size of a convolution or pooling window along one axis, as torch computes it (floor mode).
int64_t window_out(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dilation, const std::string& layer) {
  int64_t out = (in + 2 * pad - dilation * (k - 1) - 1) / stride + 1;
  RTUNE_CHECK(in + 2 * pad - dilation * (k - 1) - 1 >= 0 && out > 0,
              "summary: the input is too small: {} would get {} pixels in and produce an empty output", layer, in);
  return out;
}

class Walker {
 public:
  std::vector<LayerRow> rows;

  Shape conv(const std::string& name, nn::Conv2d& c, const Shape& in) {
    const Shape& w = c.weight.shape();  // out, in, kh, kw
    const kernels::Conv2dArgs& a = c.args;
    RTUNE_CHECK(in[0] == w[1], "summary: {} expects {} input channels, gets {}", name, w[1], in[0]);
    Shape out{w[0], window_out(in[1], w[2], a.stride_h, a.pad_h, a.dilation_h, name),
              window_out(in[2], w[3], a.stride_w, a.pad_w, a.dilation_w, name)};
    int64_t macs = out[0] * out[1] * out[2] * w[1] * w[2] * w[3];
    std::string k = w[2] == w[3] ? std::to_string(w[2]) : fmt::format("{}x{}", w[2], w[3]);
    push(name, "Conv2d", fmt::format("{}->{} k{} s{} p{}", w[1], w[0], k, a.stride_h, a.pad_h), out,
         numel_of(c.weight) + numel_of(c.bias), macs);
    return out;
  }
  Shape bn(const std::string& name, nn::BatchNorm2d& b, const Shape& in) {
    push(name, "BatchNorm2d", std::to_string(b.weight.numel()), in, numel_of(b.weight) + numel_of(b.bias), 0);
    return in;
  }
  Shape relu(const std::string& name, const Shape& in, const char* detail = "") {
    push(name, "ReLU", detail, in, 0, 0);
    return in;
  }
  Shape maxpool(const std::string& name, const Shape& in) {  // torchvision: MaxPool2d(3, 2, 1)
    Shape out{in[0], window_out(in[1], 3, 2, 1, 1, name), window_out(in[2], 3, 2, 1, 1, name)};
    push(name, "MaxPool2d", "k3 s2 p1", out, 0, 0);
    return out;
  }
  Shape avgpool(const std::string& name, const Shape& in) {
    push(name, "AdaptiveAvgPool2d", "1x1", {in[0], 1, 1}, 0, 0);
    return {in[0]};  // flatten(x, 1)
  }
  Shape linear(const std::string& name, nn::Linear& l, const Shape& in) {
    const Shape& w = l.weight.shape();  // out, in
    RTUNE_CHECK(in == Shape{w[1]}, "summary: {} expects {} features, gets {}", name, w[1], shape_str(in));
    push(name, "Linear", fmt::format("{}->{}", w[1], w[0]), {w[0]}, numel_of(l.weight) + numel_of(l.bias), w[0] * w[1]);
    return {w[0]};
  }

  template <class Block>
  Shape block(const std::string& p, Block& b, const Shape& in) {
    Shape h = relu(p + ".relu", bn(p + ".bn1", *b.bn1, conv(p + ".conv1", *b.conv1, in)));
    if constexpr (std::is_same_v<Block, models::Bottleneck>) {
      h = relu(p + ".relu", bn(p + ".bn2", *b.bn2, conv(p + ".conv2", *b.conv2, h)));
      h = bn(p + ".bn3", *b.bn3, conv(p + ".conv3", *b.conv3, h));
    } else {
      h = bn(p + ".bn2", *b.bn2, conv(p + ".conv2", *b.conv2, h));
    }
    Shape identity = in;
    if (b.down_conv) identity = bn(p + ".downsample.1", *b.down_bn, conv(p + ".downsample.0", *b.down_conv, in));
    RTUNE_CHECK(identity == h, "summary: {} adds {} to {}", p, shape_str(identity), shape_str(h));
    return relu(p + ".relu", h, "out + identity");
  }

 private:
  void push(const std::string& name, const char* type, std::string detail, Shape out, int64_t params, int64_t macs) {
    rows.push_back({name, type, std::move(detail), std::move(out), params, macs});
  }
};

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v < 0 ? -v : v);
  for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(size_t(i), ",");
  return v < 0 ? "-" + s : s;
}
}  // namespace

ModelSummary summarize(ResNet& model, int64_t input_h, int64_t input_w) {
  RTUNE_CHECK(input_h > 0 && input_w > 0, "summary: input size must be positive, got {}x{}", input_h, input_w);
  ModelSummary s;
  const models::ResNetConfig& cfg = model.config();
  s.arch = cfg.arch;
  s.width = cfg.width;
  s.num_classes = cfg.num_classes;
  s.input_h = input_h;
  s.input_w = input_w;
  s.dtype = model.conv1->weight.dtype();

  std::map<std::string, nn::Module*> modules;
  for (auto& [n, m] : model.named_modules()) modules[n] = m;
  Walker w;
  Shape h = w.maxpool("maxpool", w.relu("relu", w.bn("bn1", *model.bn1, w.conv("conv1", *model.conv1, {3, input_h, input_w}))));
  for (int st = 1; st <= 4; ++st) {
    for (int64_t b = 0;; ++b) {
      std::string p = fmt::format("layer{}.{}", st, b);
      auto it = modules.find(p);
      if (it == modules.end()) break;
      if (auto* basic = dynamic_cast<models::BasicBlock*>(it->second)) h = w.block(p, *basic, h);
      else if (auto* bottle = dynamic_cast<models::Bottleneck*>(it->second)) h = w.block(p, *bottle, h);
      else fail("summary: {} is neither a BasicBlock nor a Bottleneck", p);
    }
  }
  h = w.linear("fc", *model.fc, w.avgpool("avgpool", h));
  s.rows = std::move(w.rows);

  for (const LayerRow& r : s.rows) {
    s.macs += r.macs;
    s.activation_elements += shape_numel(r.output);
  }
  for (auto& [n, p] : model.named_parameters()) {
    s.params += p->numel();
    if (p->requires_grad()) s.trainable_params += p->numel();
    s.param_bytes += p->numel() * int64_t(dtype_size(p->dtype()));
  }
  for (auto& [n, b] : model.named_buffers()) {
    s.buffer_elements += b->numel();
    s.buffer_bytes += b->numel() * int64_t(dtype_size(b->dtype()));
  }
  s.state_dict_keys = int64_t(model.state_dict().size());
  return s;
}

std::string format_summary(const ModelSummary& s, bool per_layer) {
  std::string out = fmt::format("{} (width {}, {} classes), input 3x{}x{}, {}\n", s.arch, s.width, s.num_classes,
                                s.input_h, s.input_w, dtype_name(s.dtype));
  if (per_layer) {
    const std::string line(100, '-');
    out += line + "\n";
    out += fmt::format("{:<26} {:<18} {:<20} {:>16} {:>12} {:>15}\n", "Layer (module path)", "Type", "Detail",
                       "Output (C,H,W)", "Param #", "MACs");
    out += line + "\n";
    for (const LayerRow& r : s.rows)
      out += fmt::format("{:<26} {:<18} {:<20} {:>16} {:>12} {:>15}\n", r.name, r.type, r.detail, shape_str(r.output),
                         with_commas(r.params), with_commas(r.macs));
    out += line + "\n";
  }
  const double mb = 1024.0 * 1024.0;
  out += fmt::format("Total params:             {}\n", with_commas(s.params));
  out += fmt::format("Trainable params:         {}\n", with_commas(s.trainable_params));
  out += fmt::format("Non-trainable params:     {}\n", with_commas(s.params - s.trainable_params));
  out += fmt::format("Buffers (BN statistics):  {} elements; state_dict keys: {}\n", with_commas(s.buffer_elements),
                     s.state_dict_keys);
  out += fmt::format("MACs per image:           {} ({:.3f} GMACs; conv + linear)\n", with_commas(s.macs), double(s.macs) / 1e9);
  out += fmt::format("Input size:               {:.2f} MB\n", double(3 * s.input_h * s.input_w * int64_t(dtype_size(s.dtype))) / mb);
  out += fmt::format("Forward activations:      {:.2f} MB per image (every row's output)\n",
                     double(s.activation_bytes()) / mb);
  out += fmt::format("Params + buffers size:    {:.2f} MB\n", double(s.param_bytes + s.buffer_bytes) / mb);
  return out;
}

}  // namespace rtune::finetune
