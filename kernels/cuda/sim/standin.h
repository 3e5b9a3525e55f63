// Internal to the cuDNN/cuBLAS CPU stand-ins: the opaque structs behind the real headers' handle and
// descriptor types, element conversion (fp32/fp64/fp16/bf16), strided tensor views and the shared
// blending rule (docs/cuda-libs-semantics.md §12: accumulate in double, blend, round once at the store;
// beta == 0 never reads the destination).
#pragma once
#include <cublas_v2.h>
#include <cudnn.h>

#include <array>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cuda/sim/call_log.h"

// ---- Opaque library objects. The real headers only forward-declare these names. ----

struct cudnnContext {
  cudaStream_t stream = nullptr;
};

struct cudnnTensorStruct {
  bool set = false;       // a Set call succeeded since create
  bool poisoned = false;  // the last Set call failed: the real library may leave it half-written
  cudnnDataType_t dtype = CUDNN_DATA_FLOAT;
  int nb = 0;
  std::array<int, CUDNN_DIM_MAX> dim{};
  std::array<int, CUDNN_DIM_MAX> stride{};
};

struct cudnnFilterStruct {
  bool set = false;
  bool poisoned = false;
  cudnnDataType_t dtype = CUDNN_DATA_FLOAT;
  cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;
  int nb = 0;
  std::array<int, CUDNN_DIM_MAX> dim{};  // K, C, spatial...
};

struct cudnnConvolutionStruct {
  bool set = false;
  bool poisoned = false;
  int pad[2] = {0, 0}, stride[2] = {1, 1}, dilation[2] = {1, 1};
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  int groups = 1;
};

struct cudnnPoolingStruct {
  bool set = false;
  bool poisoned = false;
  cudnnPoolingMode_t mode = CUDNN_POOLING_MAX;
  cudnnNanPropagation_t nan = CUDNN_NOT_PROPAGATE_NAN;
  int window[2] = {0, 0}, pad[2] = {0, 0}, stride[2] = {1, 1};
};

struct cublasContext {
  cudaStream_t stream = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  bool workspace_dropped_by_stream = false;  // SetStream reset a user workspace (lint on next GEMM)
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

namespace rtune::sim::standin {

// ---- Scalars ----
enum class Elem { f32, f64, f16, bf16, i8, u8, i32, none };
Elem elem_of(cudnnDataType_t t);
inline size_t elem_bytes(Elem e) {
  switch (e) {
    case Elem::f64: return 8;
    case Elem::f32: case Elem::i32: return 4;
    case Elem::f16: case Elem::bf16: return 2;
    case Elem::i8: case Elem::u8: return 1;
    case Elem::none: break;
  }
  return 0;
}
size_t cudnn_type_bytes(cudnnDataType_t t);  // 0 for types the legacy descriptors reject
const char* cudnn_type_name(cudnnDataType_t t);

inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0) {  // zero or subnormal: man * 2^-24
    const float f = std::ldexp(float(man), -24);
    return sign ? -f : f;
  }
  const uint32_t u = sign | (exp == 31 ? 0x7f800000u | (man << 13) : ((exp + 112) << 23) | (man << 13));
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t float_to_half(float f) {  // round to nearest even (the default FP rounding mode)
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const float a = std::fabs(f);
  if (std::isnan(f)) return sign | 0x7e00u;
  if (a >= 65520.f) return sign | 0x7c00u;  // 65520 is halfway between 65504 and 2^16: rounds to inf
  if (a < 6.103515625e-05f) return sign | uint16_t(std::nearbyint(a * 16777216.f));  // quantum 2^-24
  int e = 0;
  std::frexp(a, &e);  // a = fr * 2^e, fr in [0.5, 1): half exponent e-1, 10 mantissa bits
  const int r = int(std::nearbyint(std::ldexp(a, 10 - (e - 1))));  // in [1024, 2048]
  return sign | uint16_t(((e - 1 + 15) << 10) + (r - 1024));  // r == 2048 carries into the exponent
}
inline float bf16_to_float(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t float_to_bf16(float f) {  // round to nearest even, NaN stays a quiet NaN
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

// Element access by element offset. Values are widened to double; stores round once (double to
// float, then to the 16-bit type).
inline double load(const void* base, int64_t off, Elem e) {
  switch (e) {
    case Elem::f32: return static_cast<const float*>(base)[off];
    case Elem::f64: return static_cast<const double*>(base)[off];
    case Elem::f16: return half_to_float(static_cast<const uint16_t*>(base)[off]);
    case Elem::bf16: return bf16_to_float(static_cast<const uint16_t*>(base)[off]);
    case Elem::i8: return static_cast<const int8_t*>(base)[off];
    case Elem::u8: return static_cast<const uint8_t*>(base)[off];
    case Elem::i32: return static_cast<const int32_t*>(base)[off];
    case Elem::none: break;
  }
  return 0.0;
}
inline void store(void* base, int64_t off, Elem e, double v) {
  switch (e) {
    case Elem::f32: static_cast<float*>(base)[off] = float(v); return;
    case Elem::f64: static_cast<double*>(base)[off] = v; return;
    case Elem::f16: static_cast<uint16_t*>(base)[off] = float_to_half(float(v)); return;
    case Elem::bf16: static_cast<uint16_t*>(base)[off] = float_to_bf16(float(v)); return;
    case Elem::i8: static_cast<int8_t*>(base)[off] = int8_t(v); return;
    case Elem::u8: static_cast<uint8_t*>(base)[off] = uint8_t(v); return;
    case Elem::i32: static_cast<int32_t*>(base)[off] = int32_t(v); return;
    case Elem::none: return;
  }
}

// alpha/beta scaling parameters: double* for DOUBLE tensors, float* otherwise (§0).
double read_scale(const void* p, bool is_double);

// ---- Strided tensors ----
// A 4-D tensor as cuDNN addresses it: logical N,C,H,W with element strides.
struct View4 {
  int n = 0, c = 0, h = 0, w = 0;
  int64_t sn = 0, sc = 0, sh = 0, sw = 0;
  Elem e = Elem::none;
  int64_t off(int in, int ic, int ih, int iw) const { return in * sn + ic * sc + ih * sh + iw * sw; }
  int64_t count() const { return int64_t(n) * c * h * w; }
};
View4 view4(const cudnnTensorStruct& d);

// Lowest element offset and span (in elements) covered by a strided tensor; span 0 when empty.
struct Extent {
  int64_t lo = 0;
  int64_t span = 0;
};
Extent extent_of(const int* dim, const int* stride, int nb);

// Validates [ptr + lo*esize, +span*esize) through the device pointer validator.
void check_tensor_range(const cudnnTensorStruct& d, const void* ptr, const char* what);
inline void check_bytes(const void* ptr, size_t bytes, const char* what) { detail::check_device_range(ptr, bytes, what); }

// Reads a 4-D tensor into a packed NCHW double buffer.
std::vector<double> gather(const View4& v, const void* ptr);
// dst = alpha*r + beta*dst (dst not read when beta == 0), r packed NCHW, rounded once at the store.
void blend_store(const View4& v, void* ptr, const std::vector<double>& r, double alpha, double beta);

enum class Layout { nchw, nhwc, any, other };
// Packed NCHW / packed NHWC / both (ambiguous, e.g. C == 1) / neither.
Layout layout_of(const cudnnTensorStruct& d);
bool has_negative_stride(const cudnnTensorStruct& d);
bool strides_overlap(const cudnnTensorStruct& d);

// "[2,3,5,7] s[105,1,21,3] BFLOAT16"
std::string describe(const cudnnTensorStruct& d);
std::string describe(const cudnnFilterStruct& d);

// A descriptor given to a compute call: NULL or never set is BAD_PARAM; a descriptor whose last Set
// failed is additionally reported as lint.
bool usable(const cudnnTensorStruct* d, const char* fn, const char* name);
bool usable(const cudnnFilterStruct* d, const char* fn, const char* name);
bool usable(const cudnnConvolutionStruct* d, const char* fn, const char* name);
bool usable(const cudnnPoolingStruct* d, const char* fn, const char* name);
// A live handle (created and not destroyed). A destroyed non-NULL handle is also reported as lint.
bool usable_handle(const cudnnContext* h, const char* fn);

// Records msg as the thread's last error (cudnnGetLastErrorString) and returns s.
cudnnStatus_t fail(cudnnStatus_t s, std::string msg);
const std::string& last_error();

// Fills a workspace with NaN bytes after a call: its contents are not preserved between calls (lint).
void scribble(void* ptr, size_t bytes);

}  // namespace rtune::sim::standin
