// rtune::Tensor: a strided view (shape, strides, offset, dtype) over shared refcounted storage on one
// device, plus the autograd fields. Semantics follow torch.Tensor: views share storage, contiguous()
// copies only when needed, nothing moves between devices unless .to(device) is called.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>
#include "engine/device.h"
#include "engine/dtype.h"
#include "engine/error.h"
#include "engine/storage.h"

namespace rtune {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);  // throws on overflow or negative dims

enum class MemoryFormat : uint8_t { contiguous, channels_last };  // channels_last: NCHW shape, NHWC strides
Shape contiguous_strides(const Shape& shape, MemoryFormat fmt = MemoryFormat::contiguous);

struct Node;  // autograd graph node (engine/autograd.h)
struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // --- metadata
  bool defined() const { return bool(impl_); }
  const Shape& shape() const;
  const Shape& strides() const;
  int64_t offset() const;  // in elements
  int64_t dim() const { return int64_t(shape().size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  bool is_cuda() const { return device().is_cuda(); }
  const Storage& storage() const;
  bool is_contiguous(MemoryFormat fmt = MemoryFormat::contiguous) const;
  // The layout a tensor made from this one should take (torch's suggest_memory_format): channels-last when
  // this is 4-d, channels-last and not also NCHW (a [N, C, 1, 1] tensor is both), else NCHW.
  MemoryFormat suggest_memory_format() const;
  std::string str() const;  // "float32[2, 3] on cpu" for messages

  // --- data access (host code on CPU tensors; device pointers on CUDA tensors)
  void* raw_data() const;  // pointer to the element at offset()
  template <class T> T* data() const;
  template <class T> T item() const;  // single-element CPU tensor
  template <class T> std::vector<T> to_vector() const;  // contiguous copy in row-major order (CPU)

  // --- views: share storage; differentiable when the input requires grad
  Tensor view(const Shape& shape) const;      // requires compatible strides (contiguous)
  Tensor reshape(const Shape& shape) const;   // view when possible, else a copy
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;  // not differentiable for step>1
  Tensor select(int64_t dim, int64_t index) const;
  Tensor expand(const Shape& shape) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;

  // --- copies
  Tensor contiguous(MemoryFormat fmt = MemoryFormat::contiguous) const;
  Tensor clone(MemoryFormat fmt = MemoryFormat::contiguous) const;
  Tensor to(DType t) const;
  Tensor to(Device d) const;
  Tensor cpu() const { return to(Device::cpu()); }
  void copy_(const Tensor& src);  // same shape; any strides, dtypes and devices (explicit copy)
  Tensor& fill_(double v);
  Tensor& zero_() { return fill_(0.0); }

  // --- autograd
  bool requires_grad() const;
  Tensor& set_requires_grad(bool r);  // leaves only
  bool is_leaf() const;
  Tensor grad() const;           // undefined until a backward reaches it
  void set_grad(const Tensor& g);
  void zero_grad();              // drops .grad (PyTorch's set_to_none=True)
  void backward(const Tensor& grad_output = {}) const;  // scalar outputs may omit grad_output
  Tensor detach() const;         // shares storage, no graph
  const std::shared_ptr<Node>& grad_fn() const;
  void set_grad_fn(std::shared_ptr<Node> fn);

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

struct TensorImpl {
  Storage storage;
  Shape shape, strides;
  int64_t offset = 0;
  DType dtype = DType::f32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<Node> grad_fn;
};

// --- factories
struct TensorOptions {
  DType dtype = DType::f32;
  Device device = Device::cpu();
  MemoryFormat format = MemoryFormat::contiguous;
};
Tensor empty(const Shape& shape, TensorOptions o = {});
Tensor zeros(const Shape& shape, TensorOptions o = {});
Tensor ones(const Shape& shape, TensorOptions o = {});
Tensor full(const Shape& shape, double value, TensorOptions o = {});
Tensor empty_like(const Tensor& t);  // same shape, dtype, device and memory format (dense)
Tensor zeros_like(const Tensor& t);
Tensor scalar_tensor(double v, TensorOptions o = {});
Tensor arange(int64_t n, TensorOptions o = {});
// Copies host values into a new CPU tensor of the given dtype (values converted).
Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype = DType::f32);
Tensor from_vector_i64(const std::vector<int64_t>& values, const Shape& shape);
Tensor from_bytes(const void* bytes, size_t nbytes, const Shape& shape, DType dtype);  // CPU copy
// A tensor over existing memory (no copy), dense in `fmt`; `storage` (e.g. Storage::wrap of a loader
// batch or of pinned memory) must hold the whole shape.
Tensor from_storage(Storage storage, const Shape& shape, DType dtype, MemoryFormat fmt = MemoryFormat::contiguous);

// Errors naming the op and both operands.
void require_same_device(const char* op, const Tensor& a, const Tensor& b);
void require_same_dtype(const char* op, const Tensor& a, const Tensor& b);
void require_same_shape(const char* op, const Tensor& a, const Tensor& b);
void require_dtype(const char* op, const Tensor& t, DType d);
void require_float(const char* op, const Tensor& t);  // f32 or f64

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<int64_t>() { return DType::i64; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::u8; }

template <class T> T* Tensor::data() const {
  if constexpr (!std::is_same_v<std::remove_const_t<T>, uint16_t> && !std::is_void_v<T>) {
    if (dtype() != dtype_of<std::remove_const_t<T>>())
      fail("data<{}>() on a {} tensor", dtype_name(dtype_of<std::remove_const_t<T>>()), dtype_name(dtype()));
  }
  return static_cast<T*>(raw_data());
}

}  // namespace rtune
