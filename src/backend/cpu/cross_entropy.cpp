// Cross-entropy fused with log-softmax: per row one pass for the max, one for the sum of
// exponentials and, when the gradient is wanted, one writing softmax - onehot. Rows run in
// parallel; per-row losses are added serially in double, so the loss is reproducible.
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/elem.h"
#include "core/error.h"

namespace bb {

namespace {

// exp(x) in f32 within 2 ulp, vectorisable (same as activation.cpp's; see there). Results
// below 2^-126 flush to 0, which is what a softmax over a large vocab wants anyway.
inline float fast_exp(float x) {
  const float xc = std::min(std::max(x, -87.0f), 88.0f);
  const float shifter = 12582912.0f;
  const float t = std::fma(xc, 1.44269504088896341f, shifter);
  const float n = t - shifter;
  float r = std::fma(n, -0.693359375f, xc);
  r = std::fma(n, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = std::fma(p, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  p = std::fma(p, r * r, r) + 1.0f;
  const int32_t e = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(shifter);
  float y = p * std::bit_cast<float>((e + 127) << 23);
  y = x < -87.0f ? 0.0f : y;
  y = x > 88.0f ? std::numeric_limits<float>::infinity() : y;
  return y;
}

template <typename T>
float row_max(const T* __restrict x, int64_t v) {
  float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t j = 0; j < v; ++j) m = std::max(m, cpu::load(x, j));
  return m;
}

template <typename T>
float row_sum_exp(const T* __restrict x, int64_t v, float m) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < v; ++j) s += fast_exp(cpu::load(x, j) - m);
  return s;
}

template <typename T>
void cross_entropy_kernel(const T* logits, const int64_t* targets, int64_t ignore_index,
                          T* dlogits, float grad_scale, double* row_loss, int64_t rows,
                          int64_t v) {
#pragma omp parallel for schedule(static) if (rows * v > (1 << 15))
  for (int64_t r = 0; r < rows; ++r) {
    const T* __restrict x = logits + r * v;
    T* __restrict dl = dlogits ? dlogits + r * v : nullptr;
    const int64_t t = targets[r];
    if (t == ignore_index) {
      row_loss[r] = 0.0;
      if (dl) std::memset(static_cast<void*>(dl), 0, sizeof(T) * v);  // 0 bits are +0 in f32/bf16/f16
      continue;
    }
    const float m = row_max(x, v);
    const float s = row_sum_exp(x, v, m);
    const float xt = cpu::load(x, t);
    row_loss[r] = static_cast<double>(m) + std::log(static_cast<double>(s)) - xt;
    if (!dl) continue;
    const float k = grad_scale / s;
#pragma omp simd
    for (int64_t j = 0; j < v; ++j) cpu::store(dl, j, fast_exp(cpu::load(x, j) - m) * k);
    // The target's entry in one rounding, so a bf16 gradient is not rounded twice.
    cpu::store(dl, t, (fast_exp(xt - m) / s - 1.0f) * grad_scale);
  }
}

}  // namespace

void CpuBackend::cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                               const Tensor& loss, const Tensor& counted, const Tensor& dlogits,
                               float grad_scale) {
  if (!is_float(logits.dtype()))
    throw ShapeError("cross_entropy wants float logits, got " +
                     std::string(dtype_name(logits.dtype())));
  if (targets.dtype() != DType::I64)
    throw ShapeError("cross_entropy wants i64 targets, got " +
                     std::string(dtype_name(targets.dtype())));
  if (dlogits.defined() && dlogits.dtype() != logits.dtype())
    throw ShapeError("cross_entropy wants dlogits in the logits' dtype " +
                     std::string(dtype_name(logits.dtype())) + ", got " +
                     std::string(dtype_name(dlogits.dtype())));
  if (loss.dtype() != DType::F32 || counted.dtype() != DType::F32)
    throw ShapeError("cross_entropy writes loss and counted as f32");
  const int64_t v = logits.shape().last();
  const int64_t rows = v > 0 ? logits.numel() / v : 0;
  const int64_t* tg = targets.data<int64_t>();
  // Every target is checked before anything is written.
  int64_t n_counted = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (tg[r] == ignore_index) continue;
    if (tg[r] < 0 || tg[r] >= v)
      throw ShapeError("cross_entropy: target " + std::to_string(tg[r]) + " in row " +
                       std::to_string(r) + " is outside the vocabulary of " +
                       std::to_string(v) + " (and is not ignore_index " +
                       std::to_string(ignore_index) + ")");
    ++n_counted;
  }
  std::vector<double> row_loss(rows);
  cpu::dispatch_float(logits.dtype(), [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    cross_entropy_kernel<T>(logits.data<T>(), tg, ignore_index,
                            dlogits.defined() ? dlogits.data<T>() : nullptr, grad_scale,
                            row_loss.data(), rows, v);
  });
  double total = 0.0;
  for (double l : row_loss) total += l;
  loss.data<float>()[0] = static_cast<float>(total);
  counted.data<float>()[0] = static_cast<float>(n_counted);
}

}  // namespace bb
