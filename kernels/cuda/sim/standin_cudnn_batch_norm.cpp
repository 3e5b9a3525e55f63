// cuDNN 9.19 stand-in: batch normalization (docs/cuda-libs-semantics.md §5, math in §12), matching
// torch.nn.BatchNorm2d through cuDNN: biased variance in the output, saved mean and
// saveInvVariance = 1/sqrt(var_biased + eps), running variance updated with the unbiased variance,
// running = (1 - f)*running + f*batch. SPATIAL and SPATIAL_PERSISTENT compute identically;
// PER_ACTIVATION normalizes each (c,h,w) over N.
#include <fmt/format.h>

#include <cmath>
#include <vector>

#include "kernels/cuda/sim/standin.h"

using namespace rtune::sim::standin;
namespace detail = rtune::sim::detail;

namespace {

struct Bn {
  View4 x;
  bool spatial = true;
  int features = 0;  // C (spatial) or C*H*W
  int64_t m = 0;     // values per feature
  View4 p;           // parameter tensor view
  Elem pe = Elem::f32;
  int feature(int c, int h, int w) const { return spatial ? c : (c * x.h + h) * x.w + w; }
  int64_t poff(int f) const {  // parameter offset of feature f
    if (spatial) return p.off(0, f, 0, 0);
    return p.off(0, f / (x.h * x.w), (f / x.w) % x.h, f % x.w);
  }
};

const char* mode_name(cudnnBatchNormMode_t m) {
  return m == CUDNN_BATCHNORM_PER_ACTIVATION ? "PER_ACTIVATION"
                                             : m == CUDNN_BATCHNORM_SPATIAL ? "SPATIAL" : "SPATIAL_PERSISTENT";
}

// Descriptor checks shared by the three calls. `others` must match x in dims and dtype.
cudnnStatus_t check_bn(const char* fn, cudnnBatchNormMode_t mode, const cudnnTensorStruct* x,
                       std::initializer_list<const cudnnTensorStruct*> others, const cudnnTensorStruct* p, Bn& bn) {
  if (mode != CUDNN_BATCHNORM_PER_ACTIVATION && mode != CUDNN_BATCHNORM_SPATIAL &&
      mode != CUDNN_BATCHNORM_SPATIAL_PERSISTENT)
    return fail(CUDNN_STATUS_BAD_PARAM, "unknown batch norm mode");
  if (!usable(x, fn, "x descriptor") || !usable(p, fn, "parameter descriptor"))
    return fail(CUDNN_STATUS_BAD_PARAM, "NULL or unset descriptor");
  for (const cudnnTensorStruct* o : others)
    if (!usable(o, fn, "y/dy/dx descriptor")) return fail(CUDNN_STATUS_BAD_PARAM, "NULL or unset descriptor");
  if (x->nb == 5) return fail(CUDNN_STATUS_NOT_SUPPORTED, "5-D batch norm is not implemented by the stand-in");
  if (x->nb != 4) return fail(CUDNN_STATUS_BAD_PARAM, "x rank outside [4, 5]");
  for (const cudnnTensorStruct* o : others) {
    if (o->nb != x->nb || o->dtype != x->dtype) return fail(CUDNN_STATUS_BAD_PARAM, "x/y rank or dtype mismatch");
    for (int i = 0; i < 4; ++i)
      if (o->dim[i] != x->dim[i]) return fail(CUDNN_STATUS_BAD_PARAM, "x/y dims mismatch");
  }
  const Elem e = elem_of(x->dtype);
  if (e != Elem::f32 && e != Elem::f64 && e != Elem::f16 && e != Elem::bf16)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, "batch norm data type");
  bn.x = view4(*x);
  bn.spatial = mode != CUDNN_BATCHNORM_PER_ACTIVATION;
  const int ph = bn.spatial ? 1 : x->dim[2], pw = bn.spatial ? 1 : x->dim[3];
  if (p->nb != 4 || p->dim[0] != 1 || p->dim[1] != x->dim[1] || p->dim[2] != ph || p->dim[3] != pw)
    return fail(CUDNN_STATUS_BAD_PARAM, bn.spatial ? "parameter descriptor is not 1xCx1x1" : "parameter descriptor is not 1xCxHxW");
  const cudnnDataType_t want = x->dtype == CUDNN_DATA_DOUBLE ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  if (p->dtype != want) return fail(CUDNN_STATUS_BAD_PARAM, "parameter dtype must be FLOAT (DOUBLE for double x)");
  bn.p = view4(*p);
  bn.pe = elem_of(p->dtype);
  bn.features = bn.spatial ? x->dim[1] : x->dim[1] * x->dim[2] * x->dim[3];
  bn.m = bn.spatial ? int64_t(x->dim[0]) * x->dim[2] * x->dim[3] : x->dim[0];
  return CUDNN_STATUS_SUCCESS;
}

std::vector<double> read_params(const Bn& bn, const void* ptr) {
  std::vector<double> v(size_t(bn.features));
  for (int f = 0; f < bn.features; ++f) v[size_t(f)] = load(ptr, bn.poff(f), bn.pe);
  return v;
}

void write_params(const Bn& bn, void* ptr, const std::vector<double>& v) {
  for (int f = 0; f < bn.features; ++f) store(ptr, bn.poff(f), bn.pe, v[size_t(f)]);
}

// out[f] = alpha*v[f] + beta*out[f] (out not read when beta == 0).
void blend_params(const Bn& bn, void* ptr, const std::vector<double>& v, double alpha, double beta) {
  for (int f = 0; f < bn.features; ++f) {
    const int64_t o = bn.poff(f);
    store(ptr, o, bn.pe, beta == 0.0 ? alpha * v[size_t(f)] : alpha * v[size_t(f)] + beta * load(ptr, o, bn.pe));
  }
}

template <class Fn>
void for_each(const View4& v, Fn fn) {
  for (int n = 0; n < v.n; ++n)
    for (int c = 0; c < v.c; ++c)
      for (int h = 0; h < v.h; ++h)
        for (int w = 0; w < v.w; ++w) fn(n, c, h, w);
}

// Per-feature mean and biased variance (two passes, double).
void batch_stats(const Bn& bn, const void* x, std::vector<double>& mean, std::vector<double>& var) {
  mean.assign(size_t(bn.features), 0.0);
  var.assign(size_t(bn.features), 0.0);
  for_each(bn.x, [&](int n, int c, int h, int w) { mean[size_t(bn.feature(c, h, w))] += load(x, bn.x.off(n, c, h, w), bn.x.e); });
  for (double& m : mean) m /= double(bn.m);
  for_each(bn.x, [&](int n, int c, int h, int w) {
    const size_t f = size_t(bn.feature(c, h, w));
    const double d = load(x, bn.x.off(n, c, h, w), bn.x.e) - mean[f];
    var[f] += d * d;
  });
  for (double& v : var) v /= double(bn.m);
}

// y = alpha*(gamma*(x - mean)*inv + beta_p) + beta*y_prior.
void normalize_store(const Bn& bn, const void* x, const View4& yv, void* y, const std::vector<double>& gamma,
                     const std::vector<double>& shift, const std::vector<double>& mean, const std::vector<double>& inv,
                     double alpha, double beta) {
  for_each(bn.x, [&](int n, int c, int h, int w) {
    const size_t f = size_t(bn.feature(c, h, w));
    const double r = gamma[f] * (load(x, bn.x.off(n, c, h, w), bn.x.e) - mean[f]) * inv[f] + shift[f];
    const int64_t o = yv.off(n, c, h, w);
    store(y, o, yv.e, beta == 0.0 ? alpha * r : alpha * r + beta * load(y, o, yv.e));
  });
}

void check_param(const cudnnTensorStruct& p, const void* ptr, const char* what) {
  if (ptr) check_tensor_range(p, ptr, what);
}

}  // namespace

extern "C" {

cudnnStatus_t cudnnDeriveBNTensorDescriptor(cudnnTensorDescriptor_t derivedBnDesc, const cudnnTensorDescriptor_t xDesc,
                                            cudnnBatchNormMode_t mode) {
  if (!derivedBnDesc || !xDesc || !xDesc->set) return fail(CUDNN_STATUS_BAD_PARAM, "NULL or unset descriptor");
  if (mode != CUDNN_BATCHNORM_PER_ACTIVATION && mode != CUDNN_BATCHNORM_SPATIAL &&
      mode != CUDNN_BATCHNORM_SPATIAL_PERSISTENT)
    return fail(CUDNN_STATUS_BAD_PARAM, "unknown batch norm mode");
  if (xDesc->nb != 4 && xDesc->nb != 5) return fail(CUDNN_STATUS_BAD_PARAM, "x rank outside [4, 5]");
  int dim[CUDNN_DIM_MAX], stride[CUDNN_DIM_MAX];
  for (int i = 0; i < xDesc->nb; ++i)
    dim[i] = (i == 1 || (mode == CUDNN_BATCHNORM_PER_ACTIVATION && i >= 2)) ? xDesc->dim[i] : 1;
  int64_t s = 1;
  for (int i = xDesc->nb - 1; i >= 0; --i) stride[i] = int(s), s *= dim[i];  // NCHW-packed even for NHWC x
  const cudnnDataType_t t = xDesc->dtype == CUDNN_DATA_DOUBLE ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  return cudnnSetTensorNdDescriptor(derivedBnDesc, t, xDesc->nb, dim, stride);
}

cudnnStatus_t cudnnBatchNormalizationForwardTraining(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alpha, const void* beta,
    const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnTensorDescriptor_t yDesc, void* y,
    const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void* bnScale, const void* bnBias,
    double exponentialAverageFactor, void* resultRunningMean, void* resultRunningVariance, double epsilon,
    void* resultSaveMean, void* resultSaveInvVariance) {
  const char* fn = "cudnnBatchNormalizationForwardTraining";
  if (!usable_handle(handle, fn)) return fail(CUDNN_STATUS_BAD_PARAM, "invalid handle");
  Bn bn;
  if (cudnnStatus_t st = check_bn(fn, mode, xDesc, {yDesc}, bnScaleBiasMeanVarDesc, bn); st != CUDNN_STATUS_SUCCESS)
    return st;
  if (!alpha || !beta || !x || !y || !bnScale || !bnBias) return fail(CUDNN_STATUS_BAD_PARAM, "NULL pointer");
  if (!resultRunningMean != !resultRunningVariance)
    return fail(CUDNN_STATUS_BAD_PARAM, "exactly one of resultRunningMean/resultRunningVariance is NULL");
  if (!resultSaveMean != !resultSaveInvVariance)
    return fail(CUDNN_STATUS_BAD_PARAM, "exactly one of resultSaveMean/resultSaveInvVariance is NULL");
  if (!(epsilon >= CUDNN_BN_MIN_EPSILON)) return fail(CUDNN_STATUS_BAD_PARAM, "epsilon < CUDNN_BN_MIN_EPSILON");
  if (bn.m <= 1)
    detail::lint(fmt::format("{}: {} value(s) per channel; training needs more than 1 (PyTorch raises)", fn, bn.m));
  const cudnnTensorStruct& p = *bnScaleBiasMeanVarDesc;
  check_tensor_range(*xDesc, x, "cudnnBatchNormalizationForwardTraining x");
  check_tensor_range(*yDesc, y, "cudnnBatchNormalizationForwardTraining y");
  check_param(p, bnScale, "cudnnBatchNormalizationForwardTraining bnScale");
  check_param(p, bnBias, "cudnnBatchNormalizationForwardTraining bnBias");
  check_param(p, resultRunningMean, "cudnnBatchNormalizationForwardTraining resultRunningMean");
  check_param(p, resultRunningVariance, "cudnnBatchNormalizationForwardTraining resultRunningVariance");
  check_param(p, resultSaveMean, "cudnnBatchNormalizationForwardTraining resultSaveMean");
  check_param(p, resultSaveInvVariance, "cudnnBatchNormalizationForwardTraining resultSaveInvVariance");
  const bool dbl = xDesc->dtype == CUDNN_DATA_DOUBLE;
  const double a = read_scale(alpha, dbl), b = read_scale(beta, dbl);
  detail::log_call(fn, fmt::format("x {} y {} {} factor {} eps {} running {} save {} alpha {} beta {}", describe(*xDesc),
                                   describe(*yDesc), mode_name(mode), exponentialAverageFactor, epsilon,
                                   resultRunningMean != nullptr, resultSaveMean != nullptr, a, b));
  std::vector<double> mean, var;
  batch_stats(bn, x, mean, var);
  std::vector<double> inv(mean.size());
  for (size_t f = 0; f < inv.size(); ++f) inv[f] = 1.0 / std::sqrt(var[f] + epsilon);
  normalize_store(bn, x, view4(*yDesc), y, read_params(bn, bnScale), read_params(bn, bnBias), mean, inv, a, b);
  if (resultRunningMean) {
    const double f = exponentialAverageFactor, unbias = double(bn.m) / double(bn.m - 1);
    std::vector<double> rm = read_params(bn, resultRunningMean), rv = read_params(bn, resultRunningVariance);
    for (size_t i = 0; i < rm.size(); ++i) {
      rm[i] = (1 - f) * rm[i] + f * mean[i];
      rv[i] = (1 - f) * rv[i] + f * var[i] * unbias;
    }
    write_params(bn, resultRunningMean, rm);
    write_params(bn, resultRunningVariance, rv);
  }
  if (resultSaveMean) {
    write_params(bn, resultSaveMean, mean);
    write_params(bn, resultSaveInvVariance, inv);
  }
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBatchNormalizationForwardInference(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alpha, const void* beta,
    const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnTensorDescriptor_t yDesc, void* y,
    const cudnnTensorDescriptor_t bnScaleBiasMeanVarDesc, const void* bnScale, const void* bnBias,
    const void* estimatedMean, const void* estimatedVariance, double epsilon) {
  const char* fn = "cudnnBatchNormalizationForwardInference";
  if (!usable_handle(handle, fn)) return fail(CUDNN_STATUS_BAD_PARAM, "invalid handle");
  Bn bn;
  if (cudnnStatus_t st = check_bn(fn, mode, xDesc, {yDesc}, bnScaleBiasMeanVarDesc, bn); st != CUDNN_STATUS_SUCCESS)
    return st;
  if (!alpha || !beta || !x || !y || !bnScale || !bnBias || !estimatedMean || !estimatedVariance)
    return fail(CUDNN_STATUS_BAD_PARAM, "NULL pointer");
  if (!(epsilon >= CUDNN_BN_MIN_EPSILON)) return fail(CUDNN_STATUS_BAD_PARAM, "epsilon < CUDNN_BN_MIN_EPSILON");
  const cudnnTensorStruct& p = *bnScaleBiasMeanVarDesc;
  check_tensor_range(*xDesc, x, "cudnnBatchNormalizationForwardInference x");
  check_tensor_range(*yDesc, y, "cudnnBatchNormalizationForwardInference y");
  check_param(p, bnScale, "cudnnBatchNormalizationForwardInference bnScale");
  check_param(p, bnBias, "cudnnBatchNormalizationForwardInference bnBias");
  check_param(p, estimatedMean, "cudnnBatchNormalizationForwardInference estimatedMean");
  check_param(p, estimatedVariance, "cudnnBatchNormalizationForwardInference estimatedVariance");
  const bool dbl = xDesc->dtype == CUDNN_DATA_DOUBLE;
  const double a = read_scale(alpha, dbl), b = read_scale(beta, dbl);
  detail::log_call(fn, fmt::format("x {} y {} {} eps {} alpha {} beta {}", describe(*xDesc), describe(*yDesc),
                                   mode_name(mode), epsilon, a, b));
  const std::vector<double> mean = read_params(bn, estimatedMean);
  std::vector<double> inv = read_params(bn, estimatedVariance);
  for (double& v : inv) v = 1.0 / std::sqrt(v + epsilon);
  normalize_store(bn, x, view4(*yDesc), y, read_params(bn, bnScale), read_params(bn, bnBias), mean, inv, a, b);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBatchNormalizationBackward(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void* alphaDataDiff, const void* betaDataDiff,
    const void* alphaParamDiff, const void* betaParamDiff, const cudnnTensorDescriptor_t xDesc, const void* x,
    const cudnnTensorDescriptor_t dyDesc, const void* dy, const cudnnTensorDescriptor_t dxDesc, void* dx,
    const cudnnTensorDescriptor_t dBnScaleBiasDesc, const void* bnScale, void* dBnScaleResult, void* dBnBiasResult,
    double epsilon, const void* savedMean, const void* savedInvVariance) {
  const char* fn = "cudnnBatchNormalizationBackward";
  if (!usable_handle(handle, fn)) return fail(CUDNN_STATUS_BAD_PARAM, "invalid handle");
  Bn bn;
  if (cudnnStatus_t st = check_bn(fn, mode, xDesc, {dyDesc, dxDesc}, dBnScaleBiasDesc, bn); st != CUDNN_STATUS_SUCCESS)
    return st;
  if (!alphaDataDiff || !betaDataDiff || !alphaParamDiff || !betaParamDiff || !x || !dy || !dx || !bnScale ||
      !dBnScaleResult || !dBnBiasResult)
    return fail(CUDNN_STATUS_BAD_PARAM, "NULL pointer");
  if (!savedMean != !savedInvVariance)
    return fail(CUDNN_STATUS_BAD_PARAM, "exactly one of savedMean/savedInvVariance is NULL");
  if (!(epsilon >= CUDNN_BN_MIN_EPSILON)) return fail(CUDNN_STATUS_BAD_PARAM, "epsilon < CUDNN_BN_MIN_EPSILON");
  const cudnnTensorStruct& p = *dBnScaleBiasDesc;
  check_tensor_range(*xDesc, x, "cudnnBatchNormalizationBackward x");
  check_tensor_range(*dyDesc, dy, "cudnnBatchNormalizationBackward dy");
  check_tensor_range(*dxDesc, dx, "cudnnBatchNormalizationBackward dx");
  check_param(p, bnScale, "cudnnBatchNormalizationBackward bnScale");
  check_param(p, dBnScaleResult, "cudnnBatchNormalizationBackward dBnScaleResult");
  check_param(p, dBnBiasResult, "cudnnBatchNormalizationBackward dBnBiasResult");
  check_param(p, savedMean, "cudnnBatchNormalizationBackward savedMean");
  check_param(p, savedInvVariance, "cudnnBatchNormalizationBackward savedInvVariance");
  const bool dbl = xDesc->dtype == CUDNN_DATA_DOUBLE;
  const double ad = read_scale(alphaDataDiff, dbl), bd = read_scale(betaDataDiff, dbl);
  const double ap = read_scale(alphaParamDiff, dbl), bp = read_scale(betaParamDiff, dbl);
  detail::log_call(fn, fmt::format("x {} dy {} dx {} {} eps {} saved {} alphaData {} betaData {} alphaParam {} betaParam {}",
                                   describe(*xDesc), describe(*dyDesc), describe(*dxDesc), mode_name(mode), epsilon,
                                   savedMean != nullptr, ad, bd, ap, bp));
  std::vector<double> mean, inv;
  if (savedMean) {
    mean = read_params(bn, savedMean);
    inv = read_params(bn, savedInvVariance);
  } else {  // recomputed from x, which must be unchanged since the forward call
    batch_stats(bn, x, mean, inv);
    for (double& v : inv) v = 1.0 / std::sqrt(v + epsilon);
  }
  const std::vector<double> gamma = read_params(bn, bnScale);
  const View4 dyv = view4(*dyDesc), dxv = view4(*dxDesc);
  std::vector<double> dbeta(size_t(bn.features), 0.0), dgamma(size_t(bn.features), 0.0);
  for_each(bn.x, [&](int n, int c, int h, int w) {
    const size_t f = size_t(bn.feature(c, h, w));
    const double g = load(dy, dyv.off(n, c, h, w), dyv.e);
    const double xhat = (load(x, bn.x.off(n, c, h, w), bn.x.e) - mean[f]) * inv[f];
    dbeta[f] += g;
    dgamma[f] += g * xhat;
  });
  const double m = double(bn.m);
  for_each(bn.x, [&](int n, int c, int h, int w) {
    const size_t f = size_t(bn.feature(c, h, w));
    const double g = load(dy, dyv.off(n, c, h, w), dyv.e);
    const double xhat = (load(x, bn.x.off(n, c, h, w), bn.x.e) - mean[f]) * inv[f];
    const double r = gamma[f] * inv[f] / m * (m * g - dbeta[f] - xhat * dgamma[f]);
    const int64_t o = dxv.off(n, c, h, w);
    store(dx, o, dxv.e, bd == 0.0 ? ad * r : ad * r + bd * load(dx, o, dxv.e));
  });
  blend_params(bn, dBnScaleResult, dgamma, ap, bp);
  blend_params(bn, dBnBiasResult, dbeta, ap, bp);
  return CUDNN_STATUS_SUCCESS;
}

}  // extern "C"
