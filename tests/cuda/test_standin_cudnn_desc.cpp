// cuDNN stand-in handles and descriptors: values the real library is documented/observed to give
// (docs/cuda-libs-semantics.md §1-§4, §6). The status of each descriptor case is also held against the
// real libcudnn by test_standin_cudnn_differential.cpp.
#include <cstring>

#include "tests/cuda/test_standin_util.h"

using namespace standin_test;

TEST_CASE("handle, version, error strings, last error") {
  CHECK(cudnnGetVersion() == CUDNN_VERSION);
  CHECK(std::strcmp(cudnnGetErrorString(CUDNN_STATUS_BAD_PARAM_NULL_POINTER), "CUDNN_STATUS_BAD_PARAM_NULL_POINTER") == 0);
  CHECK(std::strcmp(cudnnGetErrorString(CUDNN_STATUS_NOT_SUPPORTED), "CUDNN_STATUS_NOT_SUPPORTED") == 0);
  CHECK(cudnnCreate(nullptr) == CUDNN_STATUS_BAD_PARAM);
  Handle h;
  cudaStream_t s = reinterpret_cast<cudaStream_t>(0x1234), got = nullptr;
  CHECK(cudnnSetStream(h.h, s) == CUDNN_STATUS_SUCCESS);
  CHECK(cudnnGetStream(h.h, &got) == CUDNN_STATUS_SUCCESS);
  CHECK(got == s);
  Tensor t;
  CHECK(cudnnSetTensor4dDescriptor(t.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 0, 5, 7) == CUDNN_STATUS_BAD_PARAM);
  char msg[128];
  cudnnGetLastErrorString(msg, sizeof msg);
  CHECK(std::string(msg).find("<= 0") != std::string::npos);
  int count = 0;
  CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(nullptr, &count) == CUDNN_STATUS_BAD_PARAM);
}

TEST_CASE("tensor descriptors: NHWC strides, 4dEx equivalence, size in bytes") {
  Tensor a, b, c;
  REQUIRE(cudnnSetTensor4dDescriptor(a.d, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 2, 3, 5, 7) == CUDNN_STATUS_SUCCESS);
  cudnnDataType_t t;
  int n, ch, h, w, sn, sc, sh, sw;
  REQUIRE(cudnnGetTensor4dDescriptor(a.d, &t, &n, &ch, &h, &w, &sn, &sc, &sh, &sw) == CUDNN_STATUS_SUCCESS);
  CHECK((n == 2 && ch == 3 && h == 5 && w == 7));
  CHECK((sn == 105 && sc == 1 && sh == 21 && sw == 3));
  const int dims[4] = {2, 3, 5, 7};
  REQUIRE(cudnnSetTensorNdDescriptorEx(b.d, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 4, dims) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnGetTensor4dDescriptor(b.d, &t, &n, &ch, &h, &w, &sn, &sc, &sh, &sw) == CUDNN_STATUS_SUCCESS);
  CHECK((sn == 105 && sc == 1 && sh == 21 && sw == 3));
  REQUIRE(cudnnSetTensor4dDescriptorEx(c.d, CUDNN_DATA_FLOAT, 2, 3, 5, 7, 200, 50, 8, 1) == CUDNN_STATUS_SUCCESS);
  size_t bytes = 0;
  REQUIRE(cudnnGetTensorSizeInBytes(c.d, &bytes) == CUDNN_STATUS_SUCCESS);
  CHECK(bytes == 1356);  // (1 + 1*200 + 2*50 + 4*8 + 6*1) * 4
  CHECK(cudnnSetTensor4dDescriptor(a.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 32768, 65536, 1, 1) ==
        CUDNN_STATUS_NOT_SUPPORTED);
  CHECK(cudnnSetTensor4dDescriptorEx(a.d, CUDNN_DATA_FLOAT, 2, 3, 5, 7, 105, 35, 7, 0) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnDestroyTensorDescriptor(nullptr) == CUDNN_STATUS_SUCCESS);
}

TEST_CASE("convolution descriptor and output dims (ResNet shapes)") {
  Tensor x;
  Filter f;
  Conv c;
  int n, k, h, w;
  REQUIRE(cudnnSetTensor4dDescriptor(x.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 3, 224, 224) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetFilter4dDescriptor(f.d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 64, 3, 7, 7) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetConvolution2dDescriptor(c.d, 3, 3, 2, 2, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) ==
          CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnGetConvolution2dForwardOutputDim(c.d, x.d, f.d, &n, &k, &h, &w) == CUDNN_STATUS_SUCCESS);
  CHECK((n == 1 && k == 64 && h == 112 && w == 112));
  REQUIRE(cudnnSetTensor4dDescriptor(x.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 3, 9, 10) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetFilter4dDescriptor(f.d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 4, 3, 3, 3) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnSetConvolution2dDescriptor(c.d, 1, 1, 2, 2, 2, 2, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT) ==
          CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnGetConvolution2dForwardOutputDim(c.d, x.d, f.d, &n, &k, &h, &w) == CUDNN_STATUS_SUCCESS);
  CHECK((h == 4 && w == 4));
  CHECK(cudnnSetConvolutionGroupCount(c.d, 3) == CUDNN_STATUS_SUCCESS);  // 3 != 3*3 channels now
  CHECK(cudnnGetConvolution2dForwardOutputDim(c.d, x.d, f.d, &n, &k, &h, &w) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetConvolutionMathType(c.d, cudnnMathType_t(4)) == CUDNN_STATUS_BAD_PARAM);
  CHECK(cudnnSetConvolutionGroupCount(c.d, 0) == CUDNN_STATUS_BAD_PARAM);
}

TEST_CASE("derived batch-norm descriptor: 1xCx1x1, NCHW-packed, FLOAT for bf16 and DOUBLE for double") {
  Tensor x, p;
  REQUIRE(cudnnSetTensor4dDescriptor(x.d, CUDNN_TENSOR_NHWC, CUDNN_DATA_DOUBLE, 2, 5, 3, 3) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnDeriveBNTensorDescriptor(p.d, x.d, CUDNN_BATCHNORM_SPATIAL) == CUDNN_STATUS_SUCCESS);
  cudnnDataType_t t;
  int n, c, h, w, sn, sc, sh, sw;
  REQUIRE(cudnnGetTensor4dDescriptor(p.d, &t, &n, &c, &h, &w, &sn, &sc, &sh, &sw) == CUDNN_STATUS_SUCCESS);
  CHECK(t == CUDNN_DATA_DOUBLE);
  CHECK((n == 1 && c == 5 && h == 1 && w == 1 && sc == 1));
  REQUIRE(cudnnDeriveBNTensorDescriptor(p.d, x.d, CUDNN_BATCHNORM_PER_ACTIVATION) == CUDNN_STATUS_SUCCESS);
  REQUIRE(cudnnGetTensor4dDescriptor(p.d, &t, &n, &c, &h, &w, &sn, &sc, &sh, &sw) == CUDNN_STATUS_SUCCESS);
  CHECK((c == 5 && h == 3 && w == 3 && sc == 9 && sw == 1));
  CHECK(cudnnDeriveBNTensorDescriptor(p.d, x.d, cudnnBatchNormMode_t(5)) == CUDNN_STATUS_BAD_PARAM);
}
