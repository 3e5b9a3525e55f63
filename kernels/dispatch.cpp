// The façade: checks devices and shapes once, then hands each op to the backend of its tensors' device.
#include <initializer_list>
#include "kernels/cpu/backend.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/ops.h"
#include "kernels/op_counts.h"
#ifdef RTUNE_HAS_CUDA_BACKEND
#include "kernels/cuda/allocator.h"
#include "kernels/cuda/cuda_ops.h"
// Linking the CUDA backend registers its device allocator before main(), so Tensor::to(cuda) works.
[[maybe_unused]] static const bool g_cuda_backend_registered = (rtune::cuda::init(), true);
#define RTUNE_ON_DEVICE(op, dev, ...) \
  do { count_op(#op); if ((dev).is_cuda()) { cuda::op(__VA_ARGS__); } else { cpu::op(__VA_ARGS__); } } while (0)
#define RTUNE_ON_DEVICE_RET(op, dev, ...) return (dev).is_cuda() ? cuda::op(__VA_ARGS__) : cpu::op(__VA_ARGS__)
#else
#define RTUNE_ON_DEVICE(op, dev, ...)                                                \
  do {                                                                               \
    count_op(#op);                                                                   \
    if ((dev).is_cuda()) ::rtune::fail("{}: this rtune was built without CUDA", #op); \
    cpu::op(__VA_ARGS__);                                                            \
  } while (0)
#define RTUNE_ON_DEVICE_RET(op, dev, ...)                                            \
  do {                                                                               \
    if ((dev).is_cuda()) ::rtune::fail("{}: this rtune was built without CUDA", #op); \
    return cpu::op(__VA_ARGS__);                                                     \
  } while (0)
#endif

namespace rtune::kernels {

namespace {
// All defined tensors on one device; returns it.
Device one_device(const char* op, std::initializer_list<const Tensor*> ts) {
  const Tensor* first = nullptr;
  for (const Tensor* t : ts) {
    if (!t->defined()) continue;
    if (!first) first = t;
    else require_same_device(op, *first, *t);
  }
  RTUNE_CHECK(first, "{}: no tensor given", op);
  return first->device();
}
void require_shape(const char* op, const char* what, const Tensor& t, const Shape& s) {
  if (t.defined() && t.shape() != s) fail("{}: {} must be {}, got {}", op, what, shape_str(s), t.str());
}
void require_float_same(const char* op, std::initializer_list<const Tensor*> ts) {
  const Tensor* first = nullptr;
  for (const Tensor* t : ts) {
    if (!t->defined()) continue;
    if (!first) {
      first = t;
      RTUNE_CHECK(t->dtype() == DType::f32 || t->dtype() == DType::f64 || t->dtype() == DType::bf16 ||
                      t->dtype() == DType::f16,
                  "{}: expected a floating tensor, got {}", op, t->str());
    } else {
      require_same_dtype(op, *first, *t);
    }
  }
}
}  // namespace

int cuda_device_count() {
#ifdef RTUNE_HAS_CUDA_BACKEND
  return cuda::device_count();
#else
  return 0;
#endif
}

bool channels_last_compute(Device d) { return d.is_cpu() && cpu::use_onednn(DType::f32) && cpu::onednn_prefers_nhwc(); }

bool supports_bf16(Device d) {
  if (d.is_cpu()) return cpu::native_bf16();
#ifdef RTUNE_HAS_CUDA_BACKEND
  return d.is_cuda() && cuda::supports_bf16(d.index);
#else
  return false;
#endif
}

DeviceMemoryStats device_memory_stats(Device d) {
  DeviceMemoryStats m;
#ifdef RTUNE_HAS_CUDA_BACKEND
  if (d.is_cuda()) {
    const cuda::AllocatorStats a = cuda::allocator_stats();
    m = {a.in_use_bytes, a.peak_in_use_bytes, a.cached_bytes, a.device_mallocs};
  }
#else
  (void)d;
#endif
  return m;
}

void reset_device_peak(Device d) {
#ifdef RTUNE_HAS_CUDA_BACKEND
  if (d.is_cuda()) cuda::reset_peak_memory();
#else
  (void)d;
#endif
}

void* pinned_alloc(size_t bytes) {
#ifdef RTUNE_HAS_CUDA_BACKEND
  return cuda::pinned_alloc(bytes);
#else
  fail("pinned host memory: this rtune was built without CUDA ({} bytes asked)", bytes);
#endif
}

void pinned_free(void* p) {
#ifdef RTUNE_HAS_CUDA_BACKEND
  cuda::pinned_free(p);
#else
  RTUNE_CHECK(p == nullptr, "pinned host memory: this rtune was built without CUDA");
#endif
}

void Fence::wait() const {
#ifdef RTUNE_HAS_CUDA_BACKEND
  if (event_) cuda::fence_wait(event_.get());
#endif
}

Fence fence(Device d) {
#ifdef RTUNE_HAS_CUDA_BACKEND
  if (d.is_cuda()) return Fence(cuda::fence_record());
#else
  (void)d;
#endif
  return Fence();
}

namespace {
// `host` on the CPU, `dev` on any device, both dense with the same shape, dtype and strides.
void check_transfer(const char* op, const Tensor& host, const Tensor& dev) {
  RTUNE_CHECK(host.device().is_cpu(), "{}: the host side must be a CPU tensor, got {}", op, host.str());
  require_same_shape(op, host, dev);
  require_same_dtype(op, host, dev);
  auto dense = [](const Tensor& t) { return t.is_contiguous() || t.is_contiguous(MemoryFormat::channels_last); };
  RTUNE_CHECK(dense(host) && dense(dev) && host.strides() == dev.strides(),
              "{}: both sides must be dense with the same strides, got {} and {}", op, shape_str(host.strides()),
              shape_str(dev.strides()));
}
}  // namespace

void upload(const Tensor& src, Tensor& dst) {
  check_transfer("upload", src, dst);
  if (dst.device().is_cpu()) return kernels::copy(src, dst);
#ifdef RTUNE_HAS_CUDA_BACKEND
  cuda::upload(src, dst);
#else
  fail("upload: this rtune was built without CUDA");
#endif
}

void download(const Tensor& src, Tensor& dst) {
  check_transfer("download", dst, src);
  if (src.device().is_cpu()) return kernels::copy(src, dst);
#ifdef RTUNE_HAS_CUDA_BACKEND
  cuda::download(src, dst);
#else
  fail("download: this rtune was built without CUDA");
#endif
}

void copy(const Tensor& src, Tensor& dst) { RTUNE_ON_DEVICE(copy, one_device("copy", {&src, &dst}), src, dst); }
void fill(Tensor& t, double v) { RTUNE_ON_DEVICE(fill, t.device(), t, v); }

void add(const Tensor& a, const Tensor& b, Tensor& y) { RTUNE_ON_DEVICE(add, one_device("add", {&a, &b, &y}), a, b, y); }
void sub(const Tensor& a, const Tensor& b, Tensor& y) { RTUNE_ON_DEVICE(sub, one_device("sub", {&a, &b, &y}), a, b, y); }
void mul(const Tensor& a, const Tensor& b, Tensor& y) { RTUNE_ON_DEVICE(mul, one_device("mul", {&a, &b, &y}), a, b, y); }
void add_(Tensor& a, const Tensor& b) { RTUNE_ON_DEVICE(add_, one_device("add_", {&a, &b}), a, b); }
void scale(const Tensor& x, double s, Tensor& y) { RTUNE_ON_DEVICE(scale, one_device("scale", {&x, &y}), x, s, y); }
void add_scalar(const Tensor& x, double s, Tensor& y) {
  RTUNE_ON_DEVICE(add_scalar, one_device("add_scalar", {&x, &y}), x, s, y);
}
void inv_sqrt_add(const Tensor& x, double s, Tensor& y) {
  RTUNE_ON_DEVICE(inv_sqrt_add, one_device("inv_sqrt_add", {&x, &y}), x, s, y);
}
void relu_forward(const Tensor& x, Tensor& y) { RTUNE_ON_DEVICE(relu_forward, one_device("relu", {&x, &y}), x, y); }
void relu_backward(const Tensor& gy, const Tensor& y, Tensor& gx) {
  RTUNE_ON_DEVICE(relu_backward, one_device("relu_backward", {&gy, &y, &gx}), gy, y, gx);
}
void add_relu_forward(const Tensor& a, const Tensor& b, Tensor& y) {
  RTUNE_ON_DEVICE(add_relu_forward, one_device("add_relu", {&a, &b, &y}), a, b, y);
}

void normalize_images(const Tensor& images, const std::array<float, 3>& mean, const std::array<float, 3>& stddev,
                      Tensor& y) {
  const char* op = "normalize_images";
  Device d = one_device(op, {&images, &y});
  RTUNE_CHECK(images.defined() && y.defined(), "{}: images and output must both be given", op);
  RTUNE_CHECK(images.dtype() == DType::u8, "{}: images must be uint8, got {}", op, images.str());
  RTUNE_CHECK(images.dim() == 4 && images.size(1) == 3, "{}: images must be [N, 3, H, W], got {}", op, images.str());
  RTUNE_CHECK(images.is_contiguous(MemoryFormat::channels_last),
              "{}: images must be channels-last (interleaved HWC bytes), got strides {}", op,
              shape_str(images.strides()));
  RTUNE_CHECK(y.dtype() == DType::f32 || y.dtype() == DType::f64 || y.dtype() == DType::bf16 ||
                  y.dtype() == DType::f16,
              "{}: output must be float32, float64, bfloat16 or float16, got {}", op, y.str());
  require_shape(op, "output", y, images.shape());
  RTUNE_CHECK(y.is_contiguous() || y.is_contiguous(MemoryFormat::channels_last),
              "{}: output must be dense NCHW or channels-last, got strides {}", op, shape_str(y.strides()));
  RTUNE_ON_DEVICE(normalize_images, d, images, mean, stddev, y);
}

void sum_all(const Tensor& x, Tensor& out) { RTUNE_ON_DEVICE(sum_all, one_device("sum", {&x, &out}), x, out); }
Tensor sum_to(const Tensor& x, const Shape& shape) { RTUNE_ON_DEVICE_RET(sum_to, x.device(), x, shape); }

// ------------------------------------------------------------------------------------ conv2d

Shape conv2d_out_shape(const Shape& x, const Shape& w, const Conv2dArgs& a) {
  RTUNE_CHECK(x.size() == 4 && w.size() == 4, "conv2d: expected 4-d input and weight, got {} and {}", shape_str(x),
              shape_str(w));
  RTUNE_CHECK(x[1] == w[1], "conv2d: input {} has {} channels but weight {} expects {}", shape_str(x), x[1],
              shape_str(w), w[1]);
  RTUNE_CHECK(a.stride_h > 0 && a.stride_w > 0 && a.dilation_h > 0 && a.dilation_w > 0 && a.pad_h >= 0 &&
                  a.pad_w >= 0,
              "conv2d: stride and dilation must be positive and padding non-negative");
  int64_t ho = (x[2] + 2 * a.pad_h - a.dilation_h * (w[2] - 1) - 1) / a.stride_h + 1;
  int64_t wo = (x[3] + 2 * a.pad_w - a.dilation_w * (w[3] - 1) - 1) / a.stride_w + 1;
  RTUNE_CHECK(ho > 0 && wo > 0, "conv2d: input {} too small for kernel {} with this padding", shape_str(x),
              shape_str(w));
  return {x[0], w[0], ho, wo};
}

namespace {
void require_bf16_products_on_cpu_f32(const char* op, Device d, const Tensor& t, const Conv2dArgs& a) {
  RTUNE_CHECK(!a.bf16_products || (d.is_cpu() && t.dtype() == DType::f32),
              "{}: bf16 products are a CPU float32 mode, got {} on {}", op, t.str(), d.str());
}
}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dArgs& a, Tensor& y) {
  const char* op = "conv2d_forward";
  Device d = one_device(op, {&x, &w, &bias, &y});
  require_float_same(op, {&x, &w, &bias, &y});
  require_bf16_products_on_cpu_f32(op, d, x, a);
  require_shape(op, "output", y, conv2d_out_shape(x.shape(), w.shape(), a));
  require_shape(op, "bias", bias, {w.size(0)});
  RTUNE_ON_DEVICE(conv2d_forward, d, x, w, bias, a, y);
}
void conv2d_forward_fused(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& residual, bool relu,
                          const Conv2dArgs& a, Tensor& y) {
  const char* op = "conv2d_forward_fused";
  Device d = one_device(op, {&x, &w, &bias, &residual, &y});
  require_float_same(op, {&x, &w, &bias, &residual, &y});
  require_bf16_products_on_cpu_f32(op, d, x, a);
  require_shape(op, "output", y, conv2d_out_shape(x.shape(), w.shape(), a));
  require_shape(op, "bias", bias, {w.size(0)});
  require_shape(op, "residual", residual, y.shape());
  RTUNE_CHECK(a.inference, "{}: forward only (Conv2dArgs::inference): it records no gradient", op);
  if (d.is_cpu() && cpu::conv2d_forward_fused(x, w, bias, residual, relu, a, y)) return count_op(op);
  conv2d_forward(x, w, bias, a, y);
  if (residual.defined() && relu) add_relu_forward(y, residual, y);
  else if (residual.defined()) add(y, residual, y);
  else if (relu) relu_forward(y, y);
}
void conv2d_backward_input(const Tensor& gy, const Tensor& w, const Conv2dArgs& a, Tensor& gx) {
  const char* op = "conv2d_backward_input";
  Device d = one_device(op, {&gy, &w, &gx});
  require_float_same(op, {&gy, &w, &gx});
  require_bf16_products_on_cpu_f32(op, d, gy, a);
  require_shape(op, "grad_output", gy, conv2d_out_shape(gx.shape(), w.shape(), a));
  RTUNE_ON_DEVICE(conv2d_backward_input, d, gy, w, a, gx);
}
void conv2d_backward_weight(const Tensor& gy, const Tensor& x, const Conv2dArgs& a, Tensor& gw) {
  const char* op = "conv2d_backward_weight";
  Device d = one_device(op, {&gy, &x, &gw});
  require_float_same(op, {&gy, &x, &gw});
  require_bf16_products_on_cpu_f32(op, d, gy, a);
  require_shape(op, "grad_output", gy, conv2d_out_shape(x.shape(), gw.shape(), a));
  RTUNE_ON_DEVICE(conv2d_backward_weight, d, gy, x, a, gw);
}
void conv2d_backward_bias(const Tensor& gy, Tensor& gb) {
  Device d = one_device("conv2d_backward_bias", {&gy, &gb});
  require_float_same("conv2d_backward_bias", {&gy, &gb});
  RTUNE_ON_DEVICE(conv2d_backward_bias, d, gy, gb);
}

// ------------------------------------------------------------------------------------ batch norm

void batch_norm_forward_train(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                              Tensor& running_var, double momentum, double eps, Tensor& y, Tensor& save_mean,
                              Tensor& save_invstd) {
  const char* op = "batch_norm_forward_train";
  Device d = one_device(op, {&x, &weight, &bias, &running_mean, &running_var, &y, &save_mean, &save_invstd});
  require_same_shape(op, x, y);
  Shape c{x.size(1)};
  for (const Tensor* t : std::initializer_list<const Tensor*>{&weight, &bias, &running_mean, &running_var, &save_mean, &save_invstd})
    require_shape(op, "per-channel tensor", *t, c);
  RTUNE_ON_DEVICE(batch_norm_forward_train, d, x, weight, bias, running_mean, running_var, momentum, eps, y, save_mean,
                  save_invstd);
}
void batch_norm_relu_forward_train(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                                   Tensor& running_var, double momentum, double eps, const Tensor& residual, Tensor& y,
                                   Tensor& save_mean, Tensor& save_invstd) {
  const char* op = "batch_norm_relu_forward_train";
  Device d = one_device(op, {&x, &weight, &bias, &running_mean, &running_var, &residual, &y, &save_mean, &save_invstd});
  require_shape(op, "residual", residual, x.shape());
  if (residual.defined()) require_float_same(op, {&x, &residual});
  if (d.is_cuda()) {
    batch_norm_forward_train(x, weight, bias, running_mean, running_var, momentum, eps, y, save_mean, save_invstd);
    if (residual.defined()) add_relu_forward(y, residual, y);
    else relu_forward(y, y);
    return;
  }
  require_same_shape(op, x, y);
  Shape c{x.size(1)};
  for (const Tensor* t : std::initializer_list<const Tensor*>{&weight, &bias, &running_mean, &running_var, &save_mean, &save_invstd})
    require_shape(op, "per-channel tensor", *t, c);
  count_op(op);
  cpu::batch_norm_forward_train(x, weight, bias, running_mean, running_var, momentum, eps, y, save_mean, save_invstd,
                                residual, true);
}
void batch_norm_relu_backward(const Tensor& gy, const Tensor& y, const Tensor& x, const Tensor& weight,
                              const Tensor& mean, const Tensor& invstd, Tensor& gx, Tensor& gw, Tensor& gb) {
  const char* op = "batch_norm_relu_backward";
  Device d = one_device(op, {&gy, &y, &x, &weight, &mean, &invstd, &gx, &gw, &gb});
  require_same_shape(op, gy, x);
  require_same_shape(op, y, x);
  if (gx.defined()) require_same_shape(op, gx, x);
  if (d.is_cuda()) {
    Tensor g = empty(gy.shape(), {gy.dtype(), gy.device(), gy.is_contiguous() ? MemoryFormat::contiguous : MemoryFormat::channels_last});
    relu_backward(gy, y, g);
    batch_norm_backward(g, x, weight, mean, invstd, true, gx, gw, gb);
    return;
  }
  count_op(op);
  cpu::batch_norm_backward(gy, x, weight, mean, invstd, true, gx, gw, gb, y);
}
void batch_norm_forward_eval(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                             const Tensor& running_var, double eps, Tensor& y) {
  const char* op = "batch_norm_forward_eval";
  Device d = one_device(op, {&x, &weight, &bias, &running_mean, &running_var, &y});
  require_same_shape(op, x, y);
  Shape c{x.size(1)};
  for (const Tensor* t : {&weight, &bias, &running_mean, &running_var}) require_shape(op, "per-channel tensor", *t, c);
  RTUNE_ON_DEVICE(batch_norm_forward_eval, d, x, weight, bias, running_mean, running_var, eps, y);
}
void batch_norm_backward(const Tensor& gy, const Tensor& x, const Tensor& weight, const Tensor& mean,
                         const Tensor& invstd, bool training, Tensor& gx, Tensor& gw, Tensor& gb) {
  const char* op = "batch_norm_backward";
  Device d = one_device(op, {&gy, &x, &weight, &mean, &invstd, &gx, &gw, &gb});
  require_same_shape(op, gy, x);
  if (gx.defined()) require_same_shape(op, gx, x);
  RTUNE_ON_DEVICE(batch_norm_backward, d, gy, x, weight, mean, invstd, training, gx, gw, gb);
}
namespace {
// The sync-BN ops' shared contract (both backends index these densely): one device; x N×C×…, and the
// tensors shaped like it in x's dtype; per-channel tensors (may be undefined) of C elements in x's dtype;
// the float64 sums/stats of 2C. Returns the device.
Device sync_bn_contract(const char* op, const Tensor& x, std::initializer_list<const Tensor*> like_x,
                        std::initializer_list<const Tensor*> per_channel, const Tensor& sums, const char* sums_what) {
  RTUNE_CHECK(x.dim() >= 2, "{}: expected an N×C×… input, got {}", op, x.str());
  for (const Tensor* t : like_x) {
    require_same_device(op, x, *t);
    require_same_dtype(op, x, *t);
    require_same_shape(op, x, *t);
  }
  for (const Tensor* t : per_channel) {
    if (!t->defined()) continue;
    require_same_device(op, x, *t);
    require_same_dtype(op, x, *t);
    require_shape(op, "per-channel tensor", *t, Shape{x.size(1)});
    RTUNE_CHECK(t->is_contiguous(), "{}: per-channel tensors must be contiguous, got {}", op, t->str());
  }
  require_same_device(op, x, sums);
  RTUNE_CHECK(sums.dtype() == DType::f64, "{}: {} must be float64, got {}", op, sums_what, dtype_name(sums.dtype()));
  require_shape(op, sums_what, sums, Shape{2 * x.size(1)});
  RTUNE_CHECK(sums.is_contiguous(), "{}: {} must be contiguous, got {}", op, sums_what, sums.str());
  return x.device();
}
}  // namespace
// The sums travel between ranks through the host (engine/functional.cpp sync_batch_norm); the kernels
// run on x's device.
void batch_norm_channel_sums(const Tensor& x, Tensor& sums) {
  Device d = sync_bn_contract("batch_norm_channel_sums", x, {}, {}, sums, "sums");
  RTUNE_ON_DEVICE(batch_norm_channel_sums, d, x, sums);
}
void batch_norm_normalize(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& stats, Tensor& y) {
  Device d = sync_bn_contract("batch_norm_normalize", x, {&y}, {&weight, &bias}, stats, "stats");
  RTUNE_ON_DEVICE(batch_norm_normalize, d, x, weight, bias, stats, y);
}
void batch_norm_backward_sums(const Tensor& gy, const Tensor& x, const Tensor& mean, const Tensor& invstd, Tensor& sums) {
  Device d = sync_bn_contract("batch_norm_backward_sums", x, {&gy}, {&mean, &invstd}, sums, "sums");
  RTUNE_CHECK(mean.defined() && invstd.defined(), "batch_norm_backward_sums: mean and invstd are required");
  RTUNE_ON_DEVICE(batch_norm_backward_sums, d, gy, x, mean, invstd, sums);
}
void batch_norm_backward_input_from_sums(const Tensor& gy, const Tensor& x, const Tensor& weight, const Tensor& mean,
                                         const Tensor& invstd, const Tensor& grad_sums, double count, Tensor& gx) {
  const char* op = "batch_norm_backward_input_from_sums";
  Device d = sync_bn_contract(op, x, {&gy, &gx}, {&weight, &mean, &invstd}, grad_sums, "grad_sums");
  RTUNE_CHECK(mean.defined() && invstd.defined(), "{}: mean and invstd are required", op);
  RTUNE_CHECK(count > 1, "{}: training needs more than one value per channel over the ranks, got {}", op, count);
  RTUNE_ON_DEVICE(batch_norm_backward_input_from_sums, d, gy, x, weight, mean, invstd, grad_sums, count, gx);
}

// ------------------------------------------------------------------------------------ pooling

Shape max_pool2d_out_shape(const Shape& x, const Pool2dArgs& a) {
  RTUNE_CHECK(x.size() == 4, "max_pool2d: expected a 4-d input, got {}", shape_str(x));
  RTUNE_CHECK(a.kernel_h > 0 && a.kernel_w > 0 && a.stride_h > 0 && a.stride_w > 0, "max_pool2d: bad kernel/stride");
  RTUNE_CHECK(a.pad_h * 2 <= a.kernel_h && a.pad_w * 2 <= a.kernel_w,
              "max_pool2d: padding should be at most half the kernel size");
  int64_t ho = (x[2] + 2 * a.pad_h - a.kernel_h) / a.stride_h + 1;
  int64_t wo = (x[3] + 2 * a.pad_w - a.kernel_w) / a.stride_w + 1;
  RTUNE_CHECK(ho > 0 && wo > 0, "max_pool2d: input {} too small", shape_str(x));
  return {x[0], x[1], ho, wo};
}
void max_pool2d_forward(const Tensor& x, const Pool2dArgs& a, Tensor& y, Tensor& indices) {
  const char* op = "max_pool2d_forward";
  Device d = one_device(op, {&x, &y, &indices});
  require_same_dtype(op, x, y);
  require_shape(op, "output", y, max_pool2d_out_shape(x.shape(), a));
  require_shape(op, "indices", indices, y.shape());
  RTUNE_ON_DEVICE(max_pool2d_forward, d, x, a, y, indices);
}
void max_pool2d_backward(const Tensor& gy, const Tensor& indices, Tensor& gx) {
  const char* op = "max_pool2d_backward";
  Device d = one_device(op, {&gy, &indices, &gx});
  require_same_shape(op, gy, indices);
  RTUNE_ON_DEVICE(max_pool2d_backward, d, gy, indices, gx);
}
void adaptive_avg_pool2d_forward(const Tensor& x, Tensor& y) {
  const char* op = "adaptive_avg_pool2d_forward";
  Device d = one_device(op, {&x, &y});
  RTUNE_CHECK(x.dim() == 4 && y.dim() == 4 && x.size(0) == y.size(0) && x.size(1) == y.size(1),
              "{}: input {} and output {} do not match", op, x.str(), y.str());
  RTUNE_ON_DEVICE(adaptive_avg_pool2d_forward, d, x, y);
}
void adaptive_avg_pool2d_backward(const Tensor& gy, Tensor& gx) {
  Device d = one_device("adaptive_avg_pool2d_backward", {&gy, &gx});
  RTUNE_ON_DEVICE(adaptive_avg_pool2d_backward, d, gy, gx);
}

// ------------------------------------------------------------------------------------ linear

void linear_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y) {
  const char* op = "linear_forward";
  Device d = one_device(op, {&x, &w, &bias, &y});
  require_float_same(op, {&x, &w, &bias, &y});
  RTUNE_CHECK(x.dim() == 2 && w.dim() == 2 && x.size(1) == w.size(1),
              "linear: input {} does not fit weight {} (in_features {})", x.str(), w.str(), w.dim() == 2 ? w.size(1) : -1);
  require_shape(op, "output", y, {x.size(0), w.size(0)});
  require_shape(op, "bias", bias, {w.size(0)});
  RTUNE_ON_DEVICE(linear_forward, d, x, w, bias, y);
}
void linear_backward_input(const Tensor& gy, const Tensor& w, Tensor& gx) {
  Device d = one_device("linear_backward_input", {&gy, &w, &gx});
  require_shape("linear_backward_input", "grad_input", gx, {gy.size(0), w.size(1)});
  RTUNE_ON_DEVICE(linear_backward_input, d, gy, w, gx);
}
void linear_backward_weight(const Tensor& gy, const Tensor& x, Tensor& gw) {
  Device d = one_device("linear_backward_weight", {&gy, &x, &gw});
  require_shape("linear_backward_weight", "grad_weight", gw, {gy.size(1), x.size(1)});
  RTUNE_ON_DEVICE(linear_backward_weight, d, gy, x, gw);
}
void linear_backward_bias(const Tensor& gy, Tensor& gb) {
  Device d = one_device("linear_backward_bias", {&gy, &gb});
  require_shape("linear_backward_bias", "grad_bias", gb, {gy.size(1)});
  RTUNE_ON_DEVICE(linear_backward_bias, d, gy, gb);
}

// ------------------------------------------------------------------------------------ softmax, loss

void softmax_forward(const Tensor& x, Tensor& y) {
  require_same_shape("softmax", x, y);
  RTUNE_ON_DEVICE(softmax_forward, one_device("softmax", {&x, &y}), x, y);
}
void softmax_backward(const Tensor& gy, const Tensor& y, Tensor& gx) {
  RTUNE_ON_DEVICE(softmax_backward, one_device("softmax_backward", {&gy, &y, &gx}), gy, y, gx);
}
void log_softmax_forward(const Tensor& x, Tensor& y) {
  require_same_shape("log_softmax", x, y);
  RTUNE_ON_DEVICE(log_softmax_forward, one_device("log_softmax", {&x, &y}), x, y);
}
void log_softmax_backward(const Tensor& gy, const Tensor& y, Tensor& gx) {
  RTUNE_ON_DEVICE(log_softmax_backward, one_device("log_softmax_backward", {&gy, &y, &gx}), gy, y, gx);
}
void cross_entropy_forward(const Tensor& logits, const Tensor& target, double ls, Reduction r, Tensor& loss,
                           Tensor& log_probs) {
  Device d = one_device("cross_entropy", {&logits, &target, &loss, &log_probs});
  require_same_shape("cross_entropy", logits, log_probs);
  RTUNE_ON_DEVICE(cross_entropy_forward, d, logits, target, ls, r, loss, log_probs);
}
void cross_entropy_backward(const Tensor& gloss, const Tensor& log_probs, const Tensor& target, double ls, Reduction r,
                            Tensor& glogits) {
  Device d = one_device("cross_entropy_backward", {&gloss, &log_probs, &target, &glogits});
  RTUNE_ON_DEVICE(cross_entropy_backward, d, gloss, log_probs, target, ls, r, glogits);
}

// ------------------------------------------------------------------------------------ optimizer updates

namespace {
// The one device of a list update's tensors (null state pointers skipped), all f32 or all f64.
Device list_device(const char* op, const std::vector<const Tensor*>& all) {
  const Tensor* ref = nullptr;
  for (const Tensor* t : all) {
    if (!t) continue;
    RTUNE_CHECK(t->defined(), "{}: a slot holds an undefined tensor (pass null for unused state)", op);
    if (!ref) {
      ref = t;
      RTUNE_CHECK(t->dtype() == DType::f32 || t->dtype() == DType::f64,
                  "{}: parameters and state must be float32 or float64, got {}", op, t->str());
    } else {
      require_same_device(op, *ref, *t);
      require_same_dtype(op, *ref, *t);
    }
  }
  return ref->device();
}
template <class Slot> void require_param_grad(const char* op, const std::vector<Slot>& slots) {
  for (size_t i = 0; i < slots.size(); ++i)
    RTUNE_CHECK(slots[i].param && slots[i].grad, "{}: slot {} has no param or no grad", op, i);
}
}  // namespace

void sgd_update_many(const std::vector<SgdSlot>& slots) {
  if (slots.empty()) return;
  require_param_grad("sgd_update_many", slots);
  std::vector<const Tensor*> all;
  for (const SgdSlot& s : slots) all.insert(all.end(), {s.param, s.grad, s.momentum_buf});
  Device d = list_device("sgd_update_many", all);
  RTUNE_ON_DEVICE(sgd_update_many, d, slots);
}
void adam_update_many(const std::vector<AdamSlot>& slots) {
  if (slots.empty()) return;
  require_param_grad("adam_update_many", slots);
  std::vector<const Tensor*> all;
  for (const AdamSlot& s : slots) all.insert(all.end(), {s.param, s.grad, s.exp_avg, s.exp_avg_sq, s.max_exp_avg_sq});
  Device d = list_device("adam_update_many", all);
  RTUNE_ON_DEVICE(adam_update_many, d, slots);
}
void rmsprop_update_many(const std::vector<RmspropSlot>& slots) {
  if (slots.empty()) return;
  require_param_grad("rmsprop_update_many", slots);
  std::vector<const Tensor*> all;
  for (const RmspropSlot& s : slots) all.insert(all.end(), {s.param, s.grad, s.square_avg, s.grad_avg, s.momentum_buf});
  Device d = list_device("rmsprop_update_many", all);
  RTUNE_ON_DEVICE(rmsprop_update_many, d, slots);
}
void clip_grad_norm_on_device(const std::vector<Tensor>& grads, double max_norm, double norm_type) {
  if (grads.empty()) return;
  std::vector<const Tensor*> ps;
  for (const Tensor& g : grads) ps.push_back(&g);
  for (const Tensor* g : ps) require_same_device("clip_grad_norm_", *ps[0], *g);
#ifdef RTUNE_HAS_CUDA_BACKEND
  RTUNE_CHECK(grads[0].is_cuda(), "clip_grad_norm_on_device: gradients on {}, not a CUDA device",
              grads[0].device().str());
  cuda::clip_grad_norm(grads, max_norm, norm_type);
#else
  fail("clip_grad_norm_on_device: this rtune was built without CUDA ({} gradients)", grads.size());
#endif
}

std::vector<double> norms(const std::vector<Tensor>& xs, double norm_type) {
  if (xs.empty()) return {};
  for (const Tensor& x : xs) require_same_device("norms", xs[0], x);
  RTUNE_ON_DEVICE_RET(norms, xs[0].device(), xs, norm_type);
}
void clamp(const Tensor& x, double lo, double hi, Tensor& y) {
  RTUNE_ON_DEVICE(clamp, one_device("clamp", {&x, &y}), x, lo, hi, y);
}

}  // namespace rtune::kernels
