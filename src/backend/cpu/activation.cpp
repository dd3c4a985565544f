// Pointwise activations (GELU tanh/erf, SiLU, ReLU, ReLU6, HardSwish) with their gradients,
// and softmax over the last dim. exp and erfc are branch-free polynomial forms (below) so
// the loops vectorise without -ffast-math; the kind is a template argument, so the switch
// on it happens once per call, not per element.
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/elem.h"
#include "backend/cpu/vec_math.h"
#include "core/error.h"

namespace bb {

namespace {

using cpu::fast_exp;

constexpr int64_t kParallelMin = 1 << 15;

inline float sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }

// erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + |z|/2): Numerical Recipes' erfcc, relative error
// < 1.2e-7 everywhere, so the left tail of GELU keeps its relative accuracy (1 + erf(z)
// would cancel). Negative z uses erfc(z) = 2 - erfc(-z).
inline float fast_erfc(float z) {
  const float a = std::fabs(z);
  const float t = 1.0f / std::fma(0.5f, a, 1.0f);
  float p = 0.17087277f;
  p = std::fma(p, t, -0.82215223f);
  p = std::fma(p, t, 1.48851587f);
  p = std::fma(p, t, -1.13520398f);
  p = std::fma(p, t, 0.27886807f);
  p = std::fma(p, t, -0.18628806f);
  p = std::fma(p, t, 0.09678418f);
  p = std::fma(p, t, 0.37409196f);
  p = std::fma(p, t, 1.00002368f);
  p = std::fma(p, t, -1.26551223f);
  const float r = t * fast_exp(std::fma(-a, a, p));
  return z < 0.0f ? 2.0f - r : r;
}

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCoef = 0.044715f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

// GELU-tanh as x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3): the same function as
// 0.5 x (1 + tanh u) without the cancellation of 1 + tanh u for negative x.
template <Activation F>
inline float act_forward(float x) {
  if constexpr (F == Activation::GeluTanh) {
    const float u = kSqrt2OverPi * (x + kGeluCoef * x * x * x);
    return x / (1.0f + fast_exp(-2.0f * u));
  } else if constexpr (F == Activation::GeluExact) {
    return x * 0.5f * fast_erfc(-x * kInvSqrt2);
  } else if constexpr (F == Activation::Silu) {
    return x / (1.0f + fast_exp(-x));
  } else if constexpr (F == Activation::Relu) {
    return x < 0.0f ? 0.0f : x;
  } else if constexpr (F == Activation::Relu6) {
    return x < 0.0f ? 0.0f : (x > 6.0f ? 6.0f : x);
  } else {  // HardSwish, in PyTorch's order of operations: x * relu6(x + 3) / 6
    const float r = std::min(std::max(x + 3.0f, 0.0f), 6.0f);
    return x * r / 6.0f;
  }
}

// f'(x) * dy, with PyTorch's choices at the kinks: relu' = 0 at x <= 0, relu6' = 0 outside
// (0, 6), hardswish' = 0 below -3, x/3 + 1/2 on [-3, 3], 1 above.
template <Activation F>
inline float act_backward(float x, float dy) {
  if constexpr (F == Activation::GeluTanh) {
    const float u = kSqrt2OverPi * (x + kGeluCoef * x * x * x);
    const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCoef * x * x);
    const float s = sigmoid(2.0f * u);
    // d/dx [x s(2u)] = s + 2 x s (1 - s) u'
    return dy * (s + 2.0f * x * s * (1.0f - s) * du);
  } else if constexpr (F == Activation::GeluExact) {
    const float cdf = 0.5f * fast_erfc(-x * kInvSqrt2);
    const float pdf = kInvSqrt2Pi * fast_exp(-0.5f * x * x);
    return dy * (cdf + x * pdf);
  } else if constexpr (F == Activation::Silu) {
    const float s = sigmoid(x);
    return dy * (s * (1.0f + x * (1.0f - s)));
  } else if constexpr (F == Activation::Relu) {
    return x > 0.0f ? dy : 0.0f;
  } else if constexpr (F == Activation::Relu6) {
    return (x > 0.0f && x < 6.0f) ? dy : 0.0f;
  } else {
    const float mid = dy * (x / 3.0f + 0.5f);
    return x < -3.0f ? 0.0f : (x <= 3.0f ? mid : dy);
  }
}

template <Activation F, typename T>
void act_forward_kernel(const T* __restrict x, T* __restrict y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) cpu::store(y, i, act_forward<F>(cpu::load(x, i)));
}

template <Activation F, typename T>
void act_backward_kernel(const T* __restrict x, const T* __restrict dy, T* __restrict dx,
                         int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i)
    cpu::store(dx, i, act_backward<F>(cpu::load(x, i), cpu::load(dy, i)));
}

// Calls fn with std::integral_constant<Activation, f>, turning the runtime kind into a
// template argument once per call.
template <typename Fn>
void dispatch_activation(Activation f, Fn&& fn) {
  using A = Activation;
  switch (f) {
    case A::GeluTanh: fn(std::integral_constant<A, A::GeluTanh>{}); break;
    case A::GeluExact: fn(std::integral_constant<A, A::GeluExact>{}); break;
    case A::Silu: fn(std::integral_constant<A, A::Silu>{}); break;
    case A::Relu: fn(std::integral_constant<A, A::Relu>{}); break;
    case A::Relu6: fn(std::integral_constant<A, A::Relu6>{}); break;
    case A::HardSwish: fn(std::integral_constant<A, A::HardSwish>{}); break;
  }
}

void require_same_float(const char* op, std::initializer_list<const Tensor*> ts) {
  const DType d = (*ts.begin())->dtype();
  for (const Tensor* t : ts) {
    if (!is_float(t->dtype()) || t->dtype() != d)
      throw ShapeError(std::string(op) + " wants all tensors in one float dtype, got " +
                       std::string(dtype_name(d)) + " and " +
                       std::string(dtype_name(t->dtype())));
  }
}

template <typename T>
void softmax_kernel(const T* x, T* y, int64_t rows, int64_t c) {
#pragma omp parallel for schedule(static) if (rows * c > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* __restrict xr = x + r * c;
    T* __restrict yr = y + r * c;
    float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
    for (int64_t j = 0; j < c; ++j) m = std::max(m, cpu::load(xr, j));
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < c; ++j) s += fast_exp(cpu::load(xr, j) - m);
    const float inv = 1.0f / s;
    // exp is recomputed rather than stored: the row is in cache and y may be bf16.
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) cpu::store(yr, j, fast_exp(cpu::load(xr, j) - m) * inv);
  }
}

template <typename T>
void softmax_backward_kernel(const T* y, const T* dy, T* dx, int64_t rows, int64_t c) {
#pragma omp parallel for schedule(static) if (rows * c > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* __restrict yr = y + r * c;
    const T* __restrict dyr = dy + r * c;
    T* __restrict dxr = dx + r * c;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < c; ++j) dot += cpu::load(yr, j) * cpu::load(dyr, j);
#pragma omp simd
    for (int64_t j = 0; j < c; ++j)
      cpu::store(dxr, j, cpu::load(yr, j) * (cpu::load(dyr, j) - dot));
  }
}

}  // namespace

void CpuBackend::activation(Activation f, const Tensor& x, const Tensor& y) {
  require_same_float("activation", {&x, &y});
  const int64_t n = x.numel();
  cpu::dispatch_float(x.dtype(), [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    dispatch_activation(f, [&](auto kind) {
      act_forward_kernel<decltype(kind)::value, T>(x.data<T>(), y.data<T>(), n);
    });
  });
}

void CpuBackend::activation_backward(Activation f, const Tensor& x, const Tensor& dy,
                                     const Tensor& dx) {
  require_same_float("activation_backward", {&x, &dy, &dx});
  const int64_t n = x.numel();
  cpu::dispatch_float(x.dtype(), [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    dispatch_activation(f, [&](auto kind) {
      act_backward_kernel<decltype(kind)::value, T>(x.data<T>(), dy.data<T>(), dx.data<T>(), n);
    });
  });
}

void CpuBackend::softmax(const Tensor& x, const Tensor& y) {
  require_same_float("softmax", {&x, &y});
  const int64_t c = x.shape().last();
  if (x.numel() == 0 || c == 0) return;
  cpu::dispatch_float(x.dtype(), [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    softmax_kernel<T>(x.data<T>(), y.data<T>(), x.numel() / c, c);
  });
}

void CpuBackend::softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) {
  require_same_float("softmax_backward", {&y, &dy, &dx});
  const int64_t c = y.shape().last();
  if (y.numel() == 0 || c == 0) return;
  cpu::dispatch_float(y.dtype(), [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    softmax_backward_kernel<T>(y.data<T>(), dy.data<T>(), dx.data<T>(), y.numel() / c, c);
  });
}

}  // namespace bb
