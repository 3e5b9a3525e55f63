// cuDNN / cuBLAS handles, descriptor wrappers and the error messages of check.h.
#include "kernels/cuda/handles.h"

#include <mutex>

#include "kernels/cuda/allocator.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/check.h"
#ifdef RTUNE_CUDA_SIM
#include "kernels/cuda/sim/call_log.h"
#endif

namespace rtune::cuda {

const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "unknown cuBLAS status";
}

void raise_cudnn(cudnnStatus_t s, const char* call, const std::string& context) {
  fail("{}: cuDNN call failed with {} ({}): {}", context, cudnnGetErrorString(s), int(s), call);
}
void raise_cublas(cublasStatus_t s, const char* call, const std::string& context) {
  fail("{}: cuBLAS call failed with {} ({}): {}", context, cublas_status_name(s), int(s), call);
}

namespace {
constexpr size_t kCublasWorkspace = size_t(4) << 20;

Handles* create_handles() {
  auto* h = new Handles();  // lives for the process: destroying handles at exit races the runtime
  init();                   // the allocator backs the workspace below
#ifdef RTUNE_CUDA_SIM
  // The stand-ins hand every buffer they touch to this check: it must lie in a live allocation.
  rtune::sim::set_device_pointer_validator(
      [](const void* p, size_t n, const char* what) { rt::sim_check_device_range(p, n, what); });
#endif
  rt::set_device(0);
  h->stream = rt::default_stream();
  CUDNN_CHECK(cudnnCreate(&h->cudnn), "CUDA backend start-up");
  CUDNN_CHECK(cudnnSetStream(h->cudnn, h->stream.raw()), "CUDA backend start-up");
  CUBLAS_CHECK(cublasCreate(&h->cublas), "CUDA backend start-up");
  CUBLAS_CHECK(cublasSetStream(h->cublas, h->stream.raw()), "CUDA backend start-up");
  // Our own workspace from the caching allocator, so cuBLAS allocates nothing in the loop.
  h->cublas_workspace = Storage::allocate(kCublasWorkspace, Device::cuda(0));
  CUBLAS_CHECK(cublasSetWorkspace(h->cublas, h->cublas_workspace.data(), kCublasWorkspace), "CUDA backend start-up");
  h->error_record = Storage::allocate(sizeof(DeviceErrorRecord), Device::cuda(0));
  rt::memset_device(h->error_record.data(), 0xff, sizeof(DeviceErrorRecord));
  // fp32 GEMMs in full FMA precision (no TF32): the f32 parity target is 1e-4.
  CUBLAS_CHECK(cublasSetMathMode(h->cublas, CUBLAS_DEFAULT_MATH), "CUDA backend start-up");
  return h;
}
}  // namespace

bool supports_bf16(int device) {
  try {
    return rt::device_props(device).bf16;
  } catch (const std::exception&) {
    return false;
  }
}

void* pinned_alloc(size_t bytes) { return rt::pinned_malloc(bytes); }
void pinned_free(void* p) { rt::pinned_free(p); }

Handles& handles() {
  static Handles* h = create_handles();
  return *h;
}

cudnnDataType_t cudnn_dtype(DType t, const char* op) {
  switch (t) {
    case DType::f32: return CUDNN_DATA_FLOAT;
    case DType::f64: return CUDNN_DATA_DOUBLE;
    case DType::bf16: return CUDNN_DATA_BFLOAT16;
    case DType::f16: return CUDNN_DATA_HALF;
    default: fail("{}: cuDNN computes on floating tensors, got {}", op, dtype_name(t));
  }
}

MemoryFormat format_of(const Tensor& t) {
  return t.dim() == 4 && !t.is_contiguous() && t.is_contiguous(MemoryFormat::channels_last)
             ? MemoryFormat::channels_last : MemoryFormat::contiguous;
}

Tensor dense_in(const Tensor& t, MemoryFormat fmt) {
  if (fmt == MemoryFormat::channels_last && t.dim() != 4) fmt = MemoryFormat::contiguous;
  return t.is_contiguous(fmt) ? t : t.contiguous(fmt);
}

bool is_dense(const Tensor& t) { return t.is_contiguous() || (t.dim() == 4 && t.is_contiguous(MemoryFormat::channels_last)); }

// ---------------------------------------------------------------- descriptors

TensorDesc::TensorDesc() { CUDNN_CHECK(cudnnCreateTensorDescriptor(&d_), "cudnnCreateTensorDescriptor"); }
TensorDesc::~TensorDesc() { cudnnDestroyTensorDescriptor(d_); }

void TensorDesc::set_dims(cudnnDataType_t dt, int n, int c, int h, int w, MemoryFormat fmt, const char* op) {
  Shape st = contiguous_strides({n, c, h, w}, fmt);
  CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(d_, dt, n, c, h, w, int(st[0]), int(st[1]), int(st[2]), int(st[3])),
              "{}: tensor descriptor [{}, {}, {}, {}]", op, n, c, h, w);
}

void TensorDesc::set(const Tensor& t, MemoryFormat fmt, const char* op) {
  RTUNE_CHECK(t.dim() >= 1 && t.dim() <= 4, "{}: cuDNN tensors here are 1-d to 4-d, got {}", op, t.str());
  Shape s = t.shape(), st = t.strides();
  while (s.size() < 4) {
    s.push_back(1);
    st.push_back(1);
  }
  Shape canon = contiguous_strides(s, fmt);
  for (size_t i = 0; i < 4; ++i) {
    RTUNE_CHECK(s[i] <= INT32_MAX && st[i] <= INT32_MAX, "{}: {} is too large for a cuDNN descriptor", op, t.str());
    if (s[i] == 1 || i >= size_t(t.dim())) st[i] = canon[i];
  }
  CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(d_, cudnn_dtype(t.dtype(), op), int(s[0]), int(s[1]), int(s[2]),
                                           int(s[3]), int(st[0]), int(st[1]), int(st[2]), int(st[3])),
              "{}: tensor descriptor for {} strides {}", op, t.str(), shape_str(t.strides()));
}

FilterDesc::FilterDesc() { CUDNN_CHECK(cudnnCreateFilterDescriptor(&d_), "cudnnCreateFilterDescriptor"); }
FilterDesc::~FilterDesc() { cudnnDestroyFilterDescriptor(d_); }

void FilterDesc::set(const Tensor& w, MemoryFormat fmt, const char* op) {
  RTUNE_CHECK(w.dim() == 4 && w.is_contiguous(fmt), "{}: filter {} must be dense in the op's layout", op, w.str());
  CUDNN_CHECK(cudnnSetFilter4dDescriptor(d_, cudnn_dtype(w.dtype(), op),
                                         fmt == MemoryFormat::channels_last ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
                                         int(w.size(0)), int(w.size(1)), int(w.size(2)), int(w.size(3))),
              "{}: filter descriptor for {}", op, w.str());
}

}  // namespace rtune::cuda
