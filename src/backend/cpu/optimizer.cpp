// Fused optimizer updates: one pass over parameter, gradient and state per step.
#include <cmath>

#include "backend/cpu/cpu_backend.h"

namespace bb {

void CpuBackend::adamw(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                       float lr, float beta1, float beta2, float eps, float weight_decay,
                       int64_t step) {
  const int64_t n = param.numel();
  float* __restrict p = param.data<float>();
  const float* __restrict g = grad.data<float>();
  float* __restrict mm = m.data<float>();
  float* __restrict vv = v.data<float>();
  // The same arithmetic as torch.optim.AdamW (decoupled decay applied before the update).
  const float bc1 = 1.0f - static_cast<float>(std::pow(double(beta1), double(step)));
  const float bc2 = 1.0f - static_cast<float>(std::pow(double(beta2), double(step)));
  const float step_size = lr / bc1;
  const float bc2_sqrt = std::sqrt(bc2);
  const float decay = 1.0f - lr * weight_decay;
#pragma omp parallel for simd if (n > (1 << 15)) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float gi = g[i];
    float mi = beta1 * mm[i] + (1.0f - beta1) * gi;
    float vi = beta2 * vv[i] + (1.0f - beta2) * gi * gi;
    mm[i] = mi;
    vv[i] = vi;
    float denom = std::sqrt(vi) / bc2_sqrt + eps;
    p[i] = p[i] * decay - step_size * mi / denom;
  }
}

void CpuBackend::sgd(const Tensor& param, const Tensor& grad, const Tensor& buf, float lr,
                     float momentum, float weight_decay, bool nesterov) {
  const int64_t n = param.numel();
  float* __restrict p = param.data<float>();
  const float* __restrict g = grad.data<float>();
  float* __restrict b = buf.defined() ? buf.data<float>() : nullptr;
  // torch.optim.SGD: d = g + wd p; buf = momentum buf + d; step along buf (or d + m buf).
#pragma omp parallel for simd if (n > (1 << 15)) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float d = g[i] + weight_decay * p[i];
    if (b) {
      float bi = momentum * b[i] + d;
      b[i] = bi;
      d = nesterov ? d + momentum * bi : bi;
    }
    p[i] -= lr * d;
  }
}

}  // namespace bb
