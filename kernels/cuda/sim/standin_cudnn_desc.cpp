// cuDNN 9.19 stand-in: handle, error strings and the tensor / filter / convolution / pooling
// descriptor calls, with the set-time validation observed on the real library
// (docs/cuda-libs-semantics.md §3, §4 "Descriptor rules", §6 "Set-time validation"). Compared with the
// real libcudnn status by tests/cuda/test_standin_cudnn_differential.cpp.
#include <fmt/format.h>

#include <cstring>
#include <mutex>
#include <set>

#include "kernels/cuda/sim/standin.h"

using namespace rtune::sim::standin;

namespace {

constexpr int64_t kMaxElements = int64_t(1) << 31;  // legacy descriptors: >= 2^31 elements unsupported

std::mutex g_handles_mu;
std::set<const cudnnContext*> g_handles;  // live handles: a destroyed one is lint, not a crash

bool legacy_dtype_ok(cudnnDataType_t t) {
  switch (t) {
    case CUDNN_DATA_FLOAT: case CUDNN_DATA_DOUBLE: case CUDNN_DATA_HALF: case CUDNN_DATA_INT8:
    case CUDNN_DATA_INT32: case CUDNN_DATA_UINT8: case CUDNN_DATA_BFLOAT16: case CUDNN_DATA_INT8x4:
    case CUDNN_DATA_UINT8x4: case CUDNN_DATA_INT8x32:
      return true;
    default:
      return false;
  }
}

bool vector_dtype(cudnnDataType_t t) {
  return t == CUDNN_DATA_INT8x4 || t == CUDNN_DATA_UINT8x4 || t == CUDNN_DATA_INT8x32;
}

bool format_ok(cudnnTensorFormat_t f) {
  return f == CUDNN_TENSOR_NCHW || f == CUDNN_TENSOR_NHWC || f == CUDNN_TENSOR_NCHW_VECT_C;
}

// Packed strides for logical dims (N, C, spatial...) in NCHW or channels-last order.
void packed_strides(cudnnTensorFormat_t f, int nb, const int* dim, int* stride) {
  if (f == CUDNN_TENSOR_NHWC) {
    int64_t s = dim[1];
    stride[1] = 1;
    for (int i = nb - 1; i >= 2; --i) {
      stride[i] = int(s);
      s *= dim[i];
    }
    stride[0] = int(s);
    return;
  }
  int64_t s = 1;
  for (int i = nb - 1; i >= 0; --i) {
    stride[i] = int(s);
    s *= dim[i];
  }
}

// The checks shared by every tensor setter; writes the descriptor only when they all pass.
cudnnStatus_t set_tensor(cudnnTensorStruct* d, cudnnDataType_t t, int nb, const int* dim, const int* stride) {
  if (!d) return fail(CUDNN_STATUS_BAD_PARAM, "tensorDesc == NULL");
  d->poisoned = true;  // cleared on success
  if (!legacy_dtype_ok(t)) return fail(CUDNN_STATUS_BAD_PARAM, "unsupported dataType for a tensor descriptor");
  int64_t count = 1;
  for (int i = 0; i < nb; ++i) {
    if (dim[i] <= 0) return fail(CUDNN_STATUS_BAD_PARAM, fmt::format("dimA[{}] <= 0", i));
    count *= dim[i];
  }
  for (int i = 0; i < nb; ++i)
    if (stride[i] == 0 && dim[i] != 1) return fail(CUDNN_STATUS_BAD_PARAM, "(strideA[i] == 0) && (dimA[i] != 1)");
  if (count >= kMaxElements) return fail(CUDNN_STATUS_NOT_SUPPORTED, "tensor has 2^31 or more elements");
  d->dtype = t;
  d->nb = nb;
  for (int i = 0; i < nb; ++i) {
    d->dim[i] = dim[i];
    d->stride[i] = stride[i];
  }
  d->set = true;
  d->poisoned = false;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t set_filter(cudnnFilterStruct* f, cudnnDataType_t t, cudnnTensorFormat_t format, int nb, const int* dim) {
  if (!f) return fail(CUDNN_STATUS_BAD_PARAM, "filterDesc == NULL");
  f->poisoned = true;
  if (!legacy_dtype_ok(t)) return fail(CUDNN_STATUS_BAD_PARAM, "unsupported dataType for a filter descriptor");
  if (!format_ok(format)) return fail(CUDNN_STATUS_BAD_PARAM, "unknown filter format");
  if (format == CUDNN_TENSOR_NCHW_VECT_C && !vector_dtype(t))
    return fail(CUDNN_STATUS_BAD_PARAM, "NCHW_VECT_C needs a vector data type");
  for (int i = 0; i < nb; ++i)
    if (dim[i] <= 0) return fail(CUDNN_STATUS_BAD_PARAM, fmt::format("filterDimA[{}] <= 0", i));
  f->dtype = t;
  f->format = format;
  f->nb = nb;
  for (int i = 0; i < nb; ++i) f->dim[i] = dim[i];
  f->set = true;
  f->poisoned = false;
  return CUDNN_STATUS_SUCCESS;
}

}  // namespace

namespace rtune::sim::standin {
bool usable_handle(const cudnnContext* h, const char* fn) {
  if (!h) return false;
  std::lock_guard lock(g_handles_mu);
  if (g_handles.count(h)) return true;
  detail::lint(fmt::format("{}: the cuDNN handle was destroyed or never created", fn));
  return false;
}
}  // namespace rtune::sim::standin

extern "C" {

size_t cudnnGetVersion(void) { return CUDNN_VERSION; }

const char* cudnnGetErrorString(cudnnStatus_t status) {
  switch (status) {
#define RTUNE_STATUS_NAME(s) \
  case s: return #s;
    RTUNE_STATUS_NAME(CUDNN_STATUS_SUCCESS)
    RTUNE_STATUS_NAME(CUDNN_STATUS_NOT_INITIALIZED)
    RTUNE_STATUS_NAME(CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH)
    RTUNE_STATUS_NAME(CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH)
    RTUNE_STATUS_NAME(CUDNN_STATUS_DEPRECATED)
    RTUNE_STATUS_NAME(CUDNN_STATUS_LICENSE_ERROR)
    RTUNE_STATUS_NAME(CUDNN_STATUS_RUNTIME_IN_PROGRESS)
    RTUNE_STATUS_NAME(CUDNN_STATUS_RUNTIME_FP_OVERFLOW)
    RTUNE_STATUS_NAME(CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED)
    RTUNE_STATUS_NAME(CUDNN_STATUS_BAD_PARAM)
    RTUNE_STATUS_NAME(CUDNN_STATUS_BAD_PARAM_NULL_POINTER)
    RTUNE_STATUS_NAME(CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER)
    RTUNE_STATUS_NAME(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED)
    RTUNE_STATUS_NAME(CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND)
    RTUNE_STATUS_NAME(CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT)
    RTUNE_STATUS_NAME(CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH)
    RTUNE_STATUS_NAME(CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH)
    RTUNE_STATUS_NAME(CUDNN_STATUS_BAD_PARAM_DUPLICATED_ENTRIES)
    RTUNE_STATUS_NAME(CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE)
    RTUNE_STATUS_NAME(CUDNN_STATUS_BAD_PARAM_CUDA_GRAPH_MISMATCH)
    RTUNE_STATUS_NAME(CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE)
    RTUNE_STATUS_NAME(CUDNN_STATUS_NOT_SUPPORTED)
    RTUNE_STATUS_NAME(CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN)
    RTUNE_STATUS_NAME(CUDNN_STATUS_NOT_SUPPORTED_SHAPE)
    RTUNE_STATUS_NAME(CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE)
    RTUNE_STATUS_NAME(CUDNN_STATUS_NOT_SUPPORTED_LAYOUT)
    RTUNE_STATUS_NAME(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER)
    RTUNE_STATUS_NAME(CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART)
    RTUNE_STATUS_NAME(CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH)
    RTUNE_STATUS_NAME(CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING)
    RTUNE_STATUS_NAME(CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE)
    RTUNE_STATUS_NAME(CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT)
    RTUNE_STATUS_NAME(CUDNN_STATUS_NOT_SUPPORTED_PADDING)
    RTUNE_STATUS_NAME(CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM)
    RTUNE_STATUS_NAME(CUDNN_STATUS_NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API)
    RTUNE_STATUS_NAME(CUDNN_STATUS_NOT_SUPPORTED_INVALID_DYNAMIC_SHAPE)
    RTUNE_STATUS_NAME(CUDNN_STATUS_INTERNAL_ERROR)
    RTUNE_STATUS_NAME(CUDNN_STATUS_INTERNAL_ERROR_COMPILATION_FAILED)
    RTUNE_STATUS_NAME(CUDNN_STATUS_INTERNAL_ERROR_UNEXPECTED_VALUE)
    RTUNE_STATUS_NAME(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED)
    RTUNE_STATUS_NAME(CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
    RTUNE_STATUS_NAME(CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM)
    RTUNE_STATUS_NAME(CUDNN_STATUS_INTERNAL_ERROR_TEXTURE_CREATION_FAILED)
    RTUNE_STATUS_NAME(CUDNN_STATUS_EXECUTION_FAILED)
    RTUNE_STATUS_NAME(CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER)
    RTUNE_STATUS_NAME(CUDNN_STATUS_EXECUTION_FAILED_CUBLAS)
    RTUNE_STATUS_NAME(CUDNN_STATUS_EXECUTION_FAILED_CUDART)
    RTUNE_STATUS_NAME(CUDNN_STATUS_EXECUTION_FAILED_CURAND)
#undef RTUNE_STATUS_NAME
    default: return "CUDNN_UNKNOWN_STATUS";
  }
}

void cudnnGetLastErrorString(char* message, size_t max_size) {
  if (!message || max_size == 0) return;
  const std::string& e = last_error();
  const size_t n = std::min(e.size(), max_size - 1);
  std::memcpy(message, e.data(), n);
  message[n] = '\0';
}

// ---- Handle: the simulated device always exists, so creation succeeds. ----

cudnnStatus_t cudnnCreate(cudnnHandle_t* handle) {
  if (!handle) return fail(CUDNN_STATUS_BAD_PARAM, "handle == NULL");
  *handle = new cudnnContext;
  std::lock_guard lock(g_handles_mu);
  g_handles.insert(*handle);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) {
  if (!usable_handle(handle, "cudnnDestroy")) return fail(CUDNN_STATUS_BAD_PARAM, "invalid handle");
  {
    std::lock_guard lock(g_handles_mu);
    g_handles.erase(handle);
  }
  delete handle;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t streamId) {
  if (!usable_handle(handle, "cudnnSetStream")) return fail(CUDNN_STATUS_BAD_PARAM, "invalid handle");
  handle->stream = streamId;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetStream(cudnnHandle_t handle, cudaStream_t* streamId) {
  if (!usable_handle(handle, "cudnnGetStream") || !streamId) return fail(CUDNN_STATUS_BAD_PARAM, "invalid argument");
  *streamId = handle->stream;
  return CUDNN_STATUS_SUCCESS;
}

// ---- Tensor descriptors ----

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* tensorDesc) {
  if (!tensorDesc) return fail(CUDNN_STATUS_BAD_PARAM, "tensorDesc == NULL");
  *tensorDesc = new cudnnTensorStruct;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t tensorDesc) {
  delete tensorDesc;  // NULL is SUCCESS [OBS]
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t tensorDesc, cudnnTensorFormat_t format,
                                         cudnnDataType_t dataType, int n, int c, int h, int w) {
  if (tensorDesc && !format_ok(format)) {
    tensorDesc->poisoned = true;
    return fail(CUDNN_STATUS_BAD_PARAM, "unknown tensor format");
  }
  if (tensorDesc && format == CUDNN_TENSOR_NCHW_VECT_C && !vector_dtype(dataType)) {
    tensorDesc->poisoned = true;
    return fail(CUDNN_STATUS_BAD_PARAM, "NCHW_VECT_C needs a vector data type");
  }
  const int dim[4] = {n, c, h, w};
  int stride[4] = {1, 1, 1, 1};
  if (n > 0 && c > 0 && h > 0 && w > 0) packed_strides(format, 4, dim, stride);  // else set_tensor reports it
  return set_tensor(tensorDesc, dataType, 4, dim, stride);
}

cudnnStatus_t cudnnSetTensor4dDescriptorEx(cudnnTensorDescriptor_t tensorDesc, cudnnDataType_t dataType, int n,
                                           int c, int h, int w, int nStride, int cStride, int hStride,
                                           int wStride) {
  const int dim[4] = {n, c, h, w}, stride[4] = {nStride, cStride, hStride, wStride};
  return set_tensor(tensorDesc, dataType, 4, dim, stride);
}

cudnnStatus_t cudnnSetTensorNdDescriptor(cudnnTensorDescriptor_t tensorDesc, cudnnDataType_t dataType, int nbDims,
                                         const int dimA[], const int strideA[]) {
  if (!tensorDesc) return fail(CUDNN_STATUS_BAD_PARAM, "tensorDesc == NULL");
  if (nbDims > CUDNN_DIM_MAX) {
    tensorDesc->poisoned = true;
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "nbDims > CUDNN_DIM_MAX");
  }
  if (nbDims < 2 || !dimA || !strideA) {
    tensorDesc->poisoned = true;
    return fail(CUDNN_STATUS_BAD_PARAM, "nbDims < 2 or NULL dimA/strideA");
  }
  return set_tensor(tensorDesc, dataType, nbDims, dimA, strideA);
}

cudnnStatus_t cudnnSetTensorNdDescriptorEx(cudnnTensorDescriptor_t tensorDesc, cudnnTensorFormat_t format,
                                           cudnnDataType_t dataType, int nbDims, const int dimA[]) {
  if (!tensorDesc) return fail(CUDNN_STATUS_BAD_PARAM, "tensorDesc == NULL");
  if (nbDims > CUDNN_DIM_MAX) {
    tensorDesc->poisoned = true;
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "nbDims > CUDNN_DIM_MAX");
  }
  if (nbDims < 3 || !dimA || !format_ok(format) ||
      (format == CUDNN_TENSOR_NCHW_VECT_C && !vector_dtype(dataType))) {
    tensorDesc->poisoned = true;
    return fail(CUDNN_STATUS_BAD_PARAM, "nbDims < 3, NULL dimA or bad format");
  }
  int stride[CUDNN_DIM_MAX] = {};
  for (int i = 0; i < nbDims; ++i)
    if (dimA[i] <= 0) return set_tensor(tensorDesc, dataType, nbDims, dimA, stride);  // reports it
  packed_strides(format, nbDims, dimA, stride);
  return set_tensor(tensorDesc, dataType, nbDims, dimA, stride);
}

cudnnStatus_t cudnnGetTensor4dDescriptor(const cudnnTensorDescriptor_t tensorDesc, cudnnDataType_t* dataType,
                                         int* n, int* c, int* h, int* w, int* nStride, int* cStride, int* hStride,
                                         int* wStride) {
  if (!tensorDesc || !tensorDesc->set || tensorDesc->nb != 4)
    return fail(CUDNN_STATUS_BAD_PARAM, "not a 4-D tensor descriptor");
  if (!dataType || !n || !c || !h || !w || !nStride || !cStride || !hStride || !wStride)
    return fail(CUDNN_STATUS_BAD_PARAM, "NULL output pointer");
  *dataType = tensorDesc->dtype;
  *n = tensorDesc->dim[0], *c = tensorDesc->dim[1], *h = tensorDesc->dim[2], *w = tensorDesc->dim[3];
  *nStride = tensorDesc->stride[0], *cStride = tensorDesc->stride[1];
  *hStride = tensorDesc->stride[2], *wStride = tensorDesc->stride[3];
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetTensorSizeInBytes(const cudnnTensorDescriptor_t tensorDesc, size_t* size) {
  if (!tensorDesc || !tensorDesc->set || !size) return fail(CUDNN_STATUS_BAD_PARAM, "invalid argument");
  const Extent e = extent_of(tensorDesc->dim.data(), tensorDesc->stride.data(), tensorDesc->nb);
  *size = size_t(e.span) * cudnn_type_bytes(tensorDesc->dtype);
  return CUDNN_STATUS_SUCCESS;
}

// ---- Filter descriptors (KCRS for NCHW, KRSC for NHWC; no strides) ----

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* filterDesc) {
  if (!filterDesc) return fail(CUDNN_STATUS_BAD_PARAM, "filterDesc == NULL");
  *filterDesc = new cudnnFilterStruct;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t filterDesc) {
  delete filterDesc;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t filterDesc, cudnnDataType_t dataType,
                                         cudnnTensorFormat_t format, int k, int c, int h, int w) {
  const int dim[4] = {k, c, h, w};
  return set_filter(filterDesc, dataType, format, 4, dim);
}

cudnnStatus_t cudnnSetFilterNdDescriptor(cudnnFilterDescriptor_t filterDesc, cudnnDataType_t dataType,
                                         cudnnTensorFormat_t format, int nbDims, const int filterDimA[]) {
  if (!filterDesc) return fail(CUDNN_STATUS_BAD_PARAM, "filterDesc == NULL");
  if (nbDims > CUDNN_DIM_MAX) {
    filterDesc->poisoned = true;
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "nbDims > CUDNN_DIM_MAX");
  }
  if (nbDims <= 2 || !filterDimA) {
    filterDesc->poisoned = true;
    return fail(CUDNN_STATUS_BAD_PARAM, "nbDims <= 2 or NULL filterDimA");
  }
  return set_filter(filterDesc, dataType, format, nbDims, filterDimA);
}

cudnnStatus_t cudnnGetFilterSizeInBytes(const cudnnFilterDescriptor_t filterDesc, size_t* size) {
  if (!filterDesc || !filterDesc->set || !size) return fail(CUDNN_STATUS_BAD_PARAM, "invalid argument");
  size_t n = cudnn_type_bytes(filterDesc->dtype);
  for (int i = 0; i < filterDesc->nb; ++i) n *= size_t(filterDesc->dim[i]);
  *size = n;
  return CUDNN_STATUS_SUCCESS;
}

// ---- Convolution descriptors ----

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* convDesc) {
  if (!convDesc) return fail(CUDNN_STATUS_BAD_PARAM, "convDesc == NULL");
  *convDesc = new cudnnConvolutionStruct;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t convDesc) {
  delete convDesc;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t convDesc, int pad_h, int pad_w, int u,
                                              int v, int dilation_h, int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t computeType) {
  if (!convDesc) return fail(CUDNN_STATUS_BAD_PARAM, "convDesc == NULL");
  convDesc->poisoned = true;
  if (pad_h < 0 || pad_w < 0) return fail(CUDNN_STATUS_BAD_PARAM, "pad < 0");
  if (u <= 0 || v <= 0) return fail(CUDNN_STATUS_BAD_PARAM, "stride <= 0");
  if (dilation_h <= 0 || dilation_w <= 0) return fail(CUDNN_STATUS_BAD_PARAM, "dilation <= 0");
  if (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION) return fail(CUDNN_STATUS_BAD_PARAM, "bad mode");
  if (computeType != CUDNN_DATA_FLOAT && computeType != CUDNN_DATA_DOUBLE && computeType != CUDNN_DATA_HALF &&
      computeType != CUDNN_DATA_INT32 && computeType != CUDNN_DATA_FAST_FLOAT_FOR_FP8)
    return fail(CUDNN_STATUS_BAD_PARAM, "unsupported computeType");
  convDesc->pad[0] = pad_h, convDesc->pad[1] = pad_w;
  convDesc->stride[0] = u, convDesc->stride[1] = v;
  convDesc->dilation[0] = dilation_h, convDesc->dilation[1] = dilation_w;
  convDesc->mode = mode;
  convDesc->compute = computeType;
  convDesc->set = true;
  convDesc->poisoned = false;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc, cudnnMathType_t mathType) {
  if (!convDesc) return fail(CUDNN_STATUS_BAD_PARAM, "convDesc == NULL");
  if (int(mathType) < 0 || int(mathType) > 3) return fail(CUDNN_STATUS_BAD_PARAM, "mathType > 3");
  convDesc->math = mathType;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc, cudnnMathType_t* mathType) {
  if (!convDesc || !mathType) return fail(CUDNN_STATUS_BAD_PARAM, "NULL argument");
  *mathType = convDesc->math;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t convDesc, int groupCount) {
  if (!convDesc) return fail(CUDNN_STATUS_BAD_PARAM, "convDesc == NULL");
  if (groupCount < 1) return fail(CUDNN_STATUS_BAD_PARAM, "groupCount < 1");
  convDesc->groups = groupCount;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionGroupCount(cudnnConvolutionDescriptor_t convDesc, int* groupCount) {
  if (!convDesc || !groupCount) return fail(CUDNN_STATUS_BAD_PARAM, "NULL argument");
  *groupCount = convDesc->groups;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t convDesc,
                                                    const cudnnTensorDescriptor_t inputTensorDesc,
                                                    const cudnnFilterDescriptor_t filterDesc, int* n, int* c, int* h,
                                                    int* w) {
  if (!convDesc || !convDesc->set || !inputTensorDesc || !inputTensorDesc->set || !filterDesc || !filterDesc->set)
    return fail(CUDNN_STATUS_BAD_PARAM, "NULL or unset descriptor");
  if (!n || !c || !h || !w) return fail(CUDNN_STATUS_BAD_PARAM, "NULL output pointer");
  const cudnnTensorStruct& x = *inputTensorDesc;
  const cudnnFilterStruct& f = *filterDesc;
  if (x.nb != 4 || f.nb != 4) return fail(CUDNN_STATUS_BAD_PARAM, "input/filter rank != 2 + convolution dims");
  if (x.dim[1] != convDesc->groups * f.dim[1])
    return fail(CUDNN_STATUS_BAD_PARAM, "inputTensorDesc->dimA[1] != convDesc->groupCount * filterDesc->dimA[1]");
  int out[2];
  for (int i = 0; i < 2; ++i) {
    const int64_t span = int64_t(f.dim[2 + i] - 1) * convDesc->dilation[i] + 1;
    const int64_t padded = int64_t(x.dim[2 + i]) + 2 * int64_t(convDesc->pad[i]);
    if (span > padded) return fail(CUDNN_STATUS_BAD_PARAM, "dilated filter larger than the padded input");
    out[i] = int(1 + (padded - span) / convDesc->stride[i]);
  }
  *n = x.dim[0], *c = f.dim[0], *h = out[0], *w = out[1];
  return CUDNN_STATUS_SUCCESS;
}

// ---- Pooling descriptors ----

cudnnStatus_t cudnnCreatePoolingDescriptor(cudnnPoolingDescriptor_t* poolingDesc) {
  if (!poolingDesc) return fail(CUDNN_STATUS_BAD_PARAM, "poolingDesc == NULL");
  *poolingDesc = new cudnnPoolingStruct;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyPoolingDescriptor(cudnnPoolingDescriptor_t poolingDesc) {
  delete poolingDesc;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetPooling2dDescriptor(cudnnPoolingDescriptor_t poolingDesc, cudnnPoolingMode_t mode,
                                          cudnnNanPropagation_t maxpoolingNanOpt, int windowHeight, int windowWidth,
                                          int verticalPadding, int horizontalPadding, int verticalStride,
                                          int horizontalStride) {
  if (!poolingDesc) return fail(CUDNN_STATUS_BAD_PARAM, "poolingDesc == NULL");
  poolingDesc->poisoned = true;
  if (int(mode) < 0 || int(mode) > 3) return fail(CUDNN_STATUS_BAD_PARAM, "bad pooling mode");
  if (maxpoolingNanOpt != CUDNN_NOT_PROPAGATE_NAN && maxpoolingNanOpt != CUDNN_PROPAGATE_NAN)
    return fail(CUDNN_STATUS_BAD_PARAM, "bad NaN option");
  if (windowHeight <= 0 || windowWidth <= 0) return fail(CUDNN_STATUS_BAD_PARAM, "window <= 0");
  if (verticalStride <= 0 || horizontalStride <= 0) return fail(CUDNN_STATUS_BAD_PARAM, "stride <= 0");
  // Negative padding and padding >= window are accepted by cuDNN [OBS]; the compute calls lint them.
  *poolingDesc = cudnnPoolingStruct{true,
                                    false,
                                    mode,
                                    maxpoolingNanOpt,
                                    {windowHeight, windowWidth},
                                    {verticalPadding, horizontalPadding},
                                    {verticalStride, horizontalStride}};
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetPooling2dForwardOutputDim(const cudnnPoolingDescriptor_t poolingDesc,
                                                const cudnnTensorDescriptor_t inputTensorDesc, int* n, int* c, int* h,
                                                int* w) {
  if (!poolingDesc || !poolingDesc->set || !inputTensorDesc || !inputTensorDesc->set || !n || !c || !h || !w)
    return fail(CUDNN_STATUS_BAD_PARAM, "NULL or unset argument");
  const cudnnTensorStruct& x = *inputTensorDesc;
  if (x.nb != 4) return fail(CUDNN_STATUS_BAD_PARAM, "input is not 4-D");
  int out[2];
  for (int i = 0; i < 2; ++i) {
    const int64_t padded = int64_t(x.dim[2 + i]) + 2 * int64_t(poolingDesc->pad[i]);
    out[i] = padded < poolingDesc->window[i] ? 0 : int(1 + (padded - poolingDesc->window[i]) / poolingDesc->stride[i]);
  }
  *n = x.dim[0], *c = x.dim[1], *h = out[0], *w = out[1];
  if (out[0] == 0 || out[1] == 0) return fail(CUDNN_STATUS_BAD_PARAM, "window larger than the padded input");
  return CUDNN_STATUS_SUCCESS;
}

}  // extern "C"
