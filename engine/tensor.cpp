#include "engine/tensor.h"
#include <algorithm>
#include <cstring>
#include <numeric>
#include <optional>
#include "engine/autograd.h"
#include "kernels/ops.h"

namespace rtune {

std::string shape_str(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    RTUNE_CHECK(d >= 0, "negative dimension in shape {}", shape_str(s));
    RTUNE_CHECK(d == 0 || n <= INT64_MAX / d, "shape {} has too many elements", shape_str(s));
    n *= d;
  }
  return n;
}

Shape contiguous_strides(const Shape& shape, MemoryFormat fmt) {
  Shape st(shape.size());
  if (fmt == MemoryFormat::channels_last) {
    RTUNE_CHECK(shape.size() == 4, "channels_last needs a 4-d shape, got {}", shape_str(shape));
    int64_t n = shape[0], c = shape[1], h = shape[2], w = shape[3];
    (void)n;
    st[1] = 1;
    st[3] = std::max<int64_t>(c, 1);
    st[2] = st[3] * std::max<int64_t>(w, 1);
    st[0] = st[2] * std::max<int64_t>(h, 1);
    return st;
  }
  int64_t acc = 1;
  for (int64_t i = int64_t(shape.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= std::max<int64_t>(shape[i], 1);
  }
  return st;
}

namespace {
const TensorImpl& checked(const std::shared_ptr<TensorImpl>& p) {
  RTUNE_CHECK(p, "use of an undefined tensor");
  return *p;
}

Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(impl);
}

int64_t wrap_dim(int64_t d, int64_t ndim, const char* op) {
  int64_t r = d < 0 ? d + ndim : d;
  RTUNE_CHECK(r >= 0 && r < std::max<int64_t>(ndim, 1), "{}: dimension {} out of range for a {}-d tensor", op, d, ndim);
  return r;
}

// Strides for viewing `t` as `shape` without copying, or empty when impossible (torch's computeStride).
std::optional<Shape> view_strides(const Tensor& t, const Shape& shape) {
  if (t.is_contiguous()) return contiguous_strides(shape);
  const Shape& os = t.shape();
  const Shape& ost = t.strides();
  Shape ns(shape.size());
  int64_t view_d = int64_t(shape.size()) - 1;
  int64_t chunk_base = ost.empty() ? 1 : ost.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = int64_t(os.size()) - 1; d >= 0; --d) {
    tensor_numel *= os[d];
    if (d == 0 || (os[d - 1] != 1 && ost[d - 1] != tensor_numel * chunk_base)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        ns[view_d] = view_numel * chunk_base;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base = ost[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return ns;
}

Shape infer_shape(Shape shape, int64_t numel, const char* op) {
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      RTUNE_CHECK(infer < 0, "{}: only one dimension can be -1 in {}", op, shape_str(shape));
      infer = int64_t(i);
    } else {
      RTUNE_CHECK(shape[i] >= 0, "{}: invalid shape {}", op, shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    RTUNE_CHECK(known > 0 && numel % known == 0, "{}: cannot infer -1 in {} for {} elements", op, shape_str(shape), numel);
    shape[infer] = numel / known;
  }
  RTUNE_CHECK(shape_numel(shape) == numel, "{}: shape {} is invalid for {} elements", op, shape_str(shape), numel);
  return shape;
}
}  // namespace

const Shape& Tensor::shape() const { return checked(impl_).shape; }
const Shape& Tensor::strides() const { return checked(impl_).strides; }
int64_t Tensor::offset() const { return checked(impl_).offset; }
int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::numel() const { return shape_numel(shape()); }
DType Tensor::dtype() const { return checked(impl_).dtype; }
Device Tensor::device() const { return checked(impl_).storage.device(); }
const Storage& Tensor::storage() const { return checked(impl_).storage; }

MemoryFormat Tensor::suggest_memory_format() const {
  return dim() == 4 && !is_contiguous() && is_contiguous(MemoryFormat::channels_last) ? MemoryFormat::channels_last
                                                                                       : MemoryFormat::contiguous;
}

bool Tensor::is_contiguous(MemoryFormat fmt) const {
  if (fmt == MemoryFormat::channels_last && dim() != 4) return false;
  Shape expect = contiguous_strides(shape(), fmt);
  for (int64_t i = 0; i < dim(); ++i)
    if (shape()[i] != 1 && strides()[i] != expect[i]) return false;
  return true;
}

std::string Tensor::str() const {
  if (!defined()) return "undefined tensor";
  return fmt::format("{}{} on {}", dtype_name(dtype()), shape_str(shape()), device().str());
}

void* Tensor::raw_data() const {
  const TensorImpl& t = checked(impl_);
  return static_cast<char*>(t.storage.data()) + t.offset * int64_t(dtype_size(t.dtype));
}

template <class T> T Tensor::item() const {
  RTUNE_CHECK(numel() == 1, "item() on a tensor with {} elements", numel());
  Tensor c = to(Device::cpu()).to(dtype_of<T>()).contiguous();
  return *c.data<T>();
}
template float Tensor::item<float>() const;
template double Tensor::item<double>() const;
template int64_t Tensor::item<int64_t>() const;

template <class T> std::vector<T> Tensor::to_vector() const {
  Tensor c = to(Device::cpu()).to(dtype_of<T>()).contiguous();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;

// ---------------------------------------------------------------- views

Tensor Tensor::view(const Shape& new_shape) const {
  Shape s = infer_shape(new_shape, numel(), "view");
  auto st = view_strides(*this, s);
  RTUNE_CHECK(st, "view: {} cannot be viewed as {} without a copy (use reshape)", str(), shape_str(s));
  Tensor out = make_view(*this, s, *st, offset());
  Shape in_shape = shape();
  record("view", {*this}, out, [in_shape](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{g.reshape(in_shape)};
  });
  return out;
}

Tensor Tensor::reshape(const Shape& new_shape) const {
  Shape s = infer_shape(new_shape, numel(), "reshape");
  if (view_strides(*this, s)) return view(s);
  return contiguous().view(s);
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  int64_t a = wrap_dim(start_dim, dim(), "flatten"), b = wrap_dim(end_dim, dim(), "flatten");
  RTUNE_CHECK(a <= b, "flatten: start_dim {} after end_dim {}", start_dim, end_dim);
  Shape s(shape().begin(), shape().begin() + a);
  int64_t m = 1;
  for (int64_t i = a; i <= b; ++i) m *= shape()[i];
  s.push_back(m);
  s.insert(s.end(), shape().begin() + b + 1, shape().end());
  return reshape(s);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  RTUNE_CHECK(int64_t(dims.size()) == dim(), "permute: {} dims given for {}", dims.size(), str());
  Shape s(dims.size()), st(dims.size());
  std::vector<int64_t> inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], dim(), "permute");
    RTUNE_CHECK(inverse[d] < 0, "permute: dimension {} repeated", d);
    inverse[d] = int64_t(i);
    s[i] = shape()[d];
    st[i] = strides()[d];
  }
  Tensor out = make_view(*this, s, st, offset());
  record("permute", {*this}, out, [inverse](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{g.permute(inverse)};
  });
  return out;
}

Tensor Tensor::transpose(int64_t a, int64_t b) const {
  std::vector<int64_t> p(dim());
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[wrap_dim(a, dim(), "transpose")], p[wrap_dim(b, dim(), "transpose")]);
  return permute(p);
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_dim(d, dim(), "narrow");
  RTUNE_CHECK(start >= 0 && length >= 0 && start + length <= shape()[d],
              "narrow: [{}, {}) out of range for dimension {} of size {}", start, start + length, d, shape()[d]);
  Shape s = shape();
  s[d] = length;
  Tensor out = make_view(*this, s, strides(), offset() + start * strides()[d]);
  Shape in_shape = shape();
  record("narrow", {*this}, out, [in_shape, d, start, length](const Tensor& g, const std::vector<bool>&) {
    Tensor full_grad = zeros(in_shape, {g.dtype(), g.device()});
    full_grad.narrow(d, start, length).copy_(g);
    return std::vector<Tensor>{full_grad};
  });
  return out;
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim(d, dim(), "slice");
  RTUNE_CHECK(step >= 1, "slice: step must be positive");
  start = std::clamp<int64_t>(start < 0 ? start + shape()[d] : start, 0, shape()[d]);
  end = std::clamp<int64_t>(end < 0 ? end + shape()[d] : end, start, shape()[d]);
  if (step == 1) return narrow(d, start, end - start);
  RTUNE_CHECK(!needs_grad(*this), "slice with step {} is not differentiable", step);
  Shape s = shape(), st = strides();
  s[d] = (end - start + step - 1) / step;
  st[d] *= step;
  return make_view(*this, s, st, offset() + start * strides()[d]);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d, dim(), "select");
  if (index < 0) index += shape()[d];
  return narrow(d, index, 1).squeeze(d);
}

Tensor Tensor::expand(const Shape& target) const {
  RTUNE_CHECK(int64_t(target.size()) >= dim(), "expand: {} to fewer dims {}", str(), shape_str(target));
  size_t lead = target.size() - shape().size();
  Shape st(target.size(), 0);
  for (size_t i = 0; i < target.size(); ++i) {
    if (i < lead) continue;
    int64_t have = shape()[i - lead];
    RTUNE_CHECK(have == target[i] || have == 1, "expand: {} cannot be expanded to {}", str(), shape_str(target));
    st[i] = have == target[i] ? strides()[i - lead] : 0;
  }
  Tensor out = make_view(*this, target, st, offset());
  Shape in_shape = shape();
  record("expand", {*this}, out, [in_shape](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{kernels::sum_to(g, in_shape)};
  });
  return out;
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = d < 0 ? d + dim() + 1 : d;
  RTUNE_CHECK(d >= 0 && d <= dim(), "unsqueeze: dimension out of range");
  Shape s = shape();
  s.insert(s.begin() + d, 1);
  return reshape(s);
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim(), "squeeze");
  if (shape()[d] != 1) return *this;
  Shape s = shape();
  s.erase(s.begin() + d);
  return reshape(s);
}

// ---------------------------------------------------------------- copies

Tensor Tensor::contiguous(MemoryFormat fmt) const {
  if (is_contiguous(fmt)) return *this;
  return clone(fmt);
}

Tensor Tensor::clone(MemoryFormat fmt) const {
  Tensor out = empty(shape(), {dtype(), device(), fmt});
  {
    NoGradGuard ng;
    out.copy_(*this);
  }
  record("clone", {*this}, out, [](const Tensor& g, const std::vector<bool>&) { return std::vector<Tensor>{g}; });
  return out;
}

Tensor Tensor::to(DType t) const {
  if (t == dtype()) return *this;
  Tensor out = empty(shape(), {t, device(), suggest_memory_format()});
  {
    NoGradGuard ng;
    out.copy_(*this);
  }
  if (is_floating(t)) {
    DType from = dtype();
    record("to_dtype", {*this}, out, [from](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{g.to(from)};
    });
  }
  return out;
}

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  const MemoryFormat fmt = suggest_memory_format();
  Tensor src = contiguous(fmt);
  Tensor out = empty(shape(), {dtype(), d, fmt});
  DeviceAllocator* a = cuda_allocator();
  a->copy(out.raw_data(), d, src.raw_data(), device(), size_t(numel()) * dtype_size(dtype()));
  Device from = device();
  record("to_device", {*this}, out, [from](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{g.to(from)};
  });
  return out;
}

void Tensor::copy_(const Tensor& src) {
  require_same_shape("copy_", *this, src);
  RTUNE_CHECK(device() == src.device(), "copy_: from {} to {}: use .to(device) to move data between devices",
              src.str(), str());
  kernels::copy(src, *this);
}

Tensor& Tensor::fill_(double v) {
  kernels::fill(*this, v);
  return *this;
}

// ---------------------------------------------------------------- autograd fields

bool Tensor::requires_grad() const { return checked(impl_).requires_grad || checked(impl_).grad_fn != nullptr; }

Tensor& Tensor::set_requires_grad(bool r) {
  RTUNE_CHECK(!impl_->grad_fn, "set_requires_grad on a non-leaf tensor ({})", str());
  RTUNE_CHECK(!r || is_floating(dtype()), "only floating tensors can require grad, not {}", str());
  impl_->requires_grad = r;
  return *this;
}

bool Tensor::is_leaf() const { return !checked(impl_).grad_fn; }
Tensor Tensor::grad() const { return Tensor(checked(impl_).grad); }
void Tensor::set_grad(const Tensor& g) { impl_->grad = g.impl_ptr(); }
void Tensor::zero_grad() { impl_->grad.reset(); }
const std::shared_ptr<Node>& Tensor::grad_fn() const { return checked(impl_).grad_fn; }
void Tensor::set_grad_fn(std::shared_ptr<Node> fn) { impl_->grad_fn = std::move(fn); }

Tensor Tensor::detach() const {
  Tensor d = make_view(*this, shape(), strides(), offset());
  return d;
}

void Tensor::backward(const Tensor& grad_output) const {
  RTUNE_CHECK(requires_grad(), "backward on {} which does not require grad", str());
  Tensor g = grad_output;
  if (!g.defined()) {
    RTUNE_CHECK(numel() == 1, "backward: grad_output can be omitted only for a scalar, not {}", str());
    g = full(shape(), 1.0, {dtype(), device()});
  }
  require_same_shape("backward", *this, g);
  run_backward(*this, g);
}

// ---------------------------------------------------------------- factories

Tensor empty(const Shape& shape, TensorOptions o) {
  int64_t n = shape_numel(shape);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate(size_t(n) * dtype_size(o.dtype), o.device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape, o.format);
  impl->dtype = o.dtype;
  return Tensor(impl);
}

Tensor from_storage(Storage storage, const Shape& shape, DType dtype, MemoryFormat fmt) {
  const size_t need = size_t(shape_numel(shape)) * dtype_size(dtype);
  RTUNE_CHECK(storage.nbytes() >= need, "from_storage: {} bytes cannot hold {} {}", storage.nbytes(), shape_str(shape),
              dtype_name(dtype));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape, fmt);
  impl->dtype = dtype;
  return Tensor(impl);
}

Tensor zeros(const Shape& shape, TensorOptions o) { return full(shape, 0.0, o); }
Tensor ones(const Shape& shape, TensorOptions o) { return full(shape, 1.0, o); }
Tensor full(const Shape& shape, double value, TensorOptions o) {
  Tensor t = empty(shape, o);
  t.fill_(value);
  return t;
}

Tensor empty_like(const Tensor& t) {
  return empty(t.shape(), {t.dtype(), t.device(), t.suggest_memory_format()});
}
Tensor zeros_like(const Tensor& t) {
  Tensor z = empty_like(t);
  z.fill_(0.0);
  return z;
}
Tensor scalar_tensor(double v, TensorOptions o) { return full({}, v, o); }

Tensor arange(int64_t n, TensorOptions o) {
  std::vector<double> v(size_t(std::max<int64_t>(n, 0)));
  std::iota(v.begin(), v.end(), 0.0);
  return from_vector(v, {n}, o.dtype).to(o.device);
}

Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype) {
  RTUNE_CHECK(shape_numel(shape) == int64_t(values.size()), "from_vector: {} values for shape {}", values.size(),
              shape_str(shape));
  Tensor src = from_bytes(values.data(), values.size() * sizeof(double), shape, DType::f64);
  return src.to(dtype);
}

Tensor from_vector_i64(const std::vector<int64_t>& values, const Shape& shape) {
  RTUNE_CHECK(shape_numel(shape) == int64_t(values.size()), "from_vector_i64: {} values for shape {}",
              values.size(), shape_str(shape));
  return from_bytes(values.data(), values.size() * sizeof(int64_t), shape, DType::i64);
}

Tensor from_bytes(const void* bytes, size_t nbytes, const Shape& shape, DType dtype) {
  RTUNE_CHECK(size_t(shape_numel(shape)) * dtype_size(dtype) == nbytes, "from_bytes: {} bytes for {}{}", nbytes,
              dtype_name(dtype), shape_str(shape));
  Tensor t = empty(shape, {dtype});
  if (nbytes) std::memcpy(t.raw_data(), bytes, nbytes);
  return t;
}

// ---------------------------------------------------------------- checks

void require_same_device(const char* op, const Tensor& a, const Tensor& b) {
  if (a.device() != b.device())
    fail("{}: operands on different devices: {} and {} (move one with .to(device))", op, a.str(), b.str());
}
void require_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype()) fail("{}: operands of different dtypes: {} and {}", op, a.str(), b.str());
}
void require_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) fail("{}: operands of different shapes: {} and {}", op, a.str(), b.str());
}
void require_dtype(const char* op, const Tensor& t, DType d) {
  if (t.dtype() != d) fail("{}: expected a {} tensor, got {}", op, dtype_name(d), t.str());
}
void require_float(const char* op, const Tensor& t) {
  if (t.dtype() != DType::f32 && t.dtype() != DType::f64)
    fail("{}: expected a float32 or float64 tensor, got {}", op, t.str());
}

}  // namespace rtune
