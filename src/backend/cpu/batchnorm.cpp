// BatchNorm over the channel (last) dim of channels-last activations (rows = N*H*W, C),
// fused with an optional residual add and ReLU/ReLU6, forward and backward. Per-channel sums
// are taken per thread in f32 over short row blocks, then added in double in thread order,
// so they are accurate over a large batch and bit-identical run to run.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/elem.h"
#include "core/error.h"

namespace bb {
namespace {

constexpr int64_t kBlockRows = 64;  // rows summed in f32 before joining the double sums

template <FusedAct A>
inline float act_fwd(float v) {
  if constexpr (A == FusedAct::kRelu) return std::max(v, 0.0f);
  if constexpr (A == FusedAct::kRelu6) return std::min(std::max(v, 0.0f), 6.0f);
  return v;
}

// d act / d input, read from the output (ReLU's output is positive exactly where it passes).
template <FusedAct A>
inline float act_pass(float y) {
  if constexpr (A == FusedAct::kRelu) return y > 0.0f ? 1.0f : 0.0f;
  if constexpr (A == FusedAct::kRelu6) return (y > 0.0f && y < 6.0f) ? 1.0f : 0.0f;
  return 1.0f;
}

// Calls fn with the activation as a compile-time constant, so the loops vectorise.
template <typename Fn>
void dispatch_act(FusedAct a, Fn&& fn) {
  switch (a) {
    case FusedAct::kRelu: fn(std::integral_constant<FusedAct, FusedAct::kRelu>{}); break;
    case FusedAct::kRelu6: fn(std::integral_constant<FusedAct, FusedAct::kRelu6>{}); break;
    default: fn(std::integral_constant<FusedAct, FusedAct::kNone>{}); break;
  }
}

// Two per-channel sums over all rows, sum_r f(r, c) and sum_r g(r, c), into out (2C, double).
// `row` (r, float* s1, float* s2) adds one row's terms to f32 block sums.
template <typename RowFn>
void channel_sums(int64_t rows, int64_t C, RowFn row, std::vector<double>& out) {
  const int nt = omp_get_max_threads();
  std::vector<double> part(static_cast<size_t>(nt) * 2 * C, 0.0);
  int used = 1;
#pragma omp parallel
  {
    const int t = omp_get_thread_num(), n = omp_get_num_threads();
#pragma omp single
    used = n;
    double* acc = part.data() + t * 2 * C;
    std::vector<float> block(2 * C);
    const int64_t r0 = rows * t / n, r1 = rows * (t + 1) / n;
    for (int64_t b = r0; b < r1; b += kBlockRows) {
      std::fill(block.begin(), block.end(), 0.0f);
      const int64_t e = std::min(b + kBlockRows, r1);
      for (int64_t r = b; r < e; ++r) row(r, block.data(), block.data() + C);
      for (int64_t c = 0; c < 2 * C; ++c) acc[c] += block[c];
    }
  }
  out.assign(2 * C, 0.0);
  for (int t = 0; t < used; ++t)
    for (int64_t c = 0; c < 2 * C; ++c) out[c] += part[t * 2 * C + c];
}

template <typename T>
void stats(const T* x, int64_t rows, int64_t C, float eps, float* mean, float* var, float* rstd) {
  // Sums of x - x[0] rather than x: the shift keeps E[d^2] - E[d]^2 from cancelling.
  std::vector<float> shift(C);
  for (int64_t c = 0; c < C; ++c) shift[c] = rows > 0 ? cpu::load(x, c) : 0.0f;
  std::vector<double> s;
  channel_sums(
      rows, C,
      [&](int64_t r, float* __restrict s1, float* __restrict s2) {
        const T* xr = x + r * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const float d = cpu::load(xr, c) - shift[c];
          s1[c] += d;
          s2[c] += d * d;
        }
      },
      s);
  const double inv = rows > 0 ? 1.0 / static_cast<double>(rows) : 0.0;
  for (int64_t c = 0; c < C; ++c) {
    const double m = s[c] * inv, v = std::max(s[C + c] * inv - m * m, 0.0);
    mean[c] = static_cast<float>(shift[c] + m);
    var[c] = static_cast<float>(v);
    rstd[c] = static_cast<float>(1.0 / std::sqrt(v + eps));
  }
}

template <typename T, FusedAct A>
void normalize(const T* x, const T* res, const float* gamma, const float* beta,
               const float* mean, const float* rstd, T* y, int64_t rows, int64_t C) {
  std::vector<float> a(C), b(C);
  for (int64_t c = 0; c < C; ++c) {
    a[c] = gamma[c] * rstd[c];
    b[c] = beta[c] - mean[c] * a[c];
  }
  const float* __restrict pa = a.data();
  const float* __restrict pb = b.data();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* __restrict xr = x + r * C;
    T* __restrict yr = y + r * C;
    if (res) {
      const T* __restrict rr = res + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c)
        cpu::store(yr, c, act_fwd<A>(cpu::load(xr, c) * pa[c] + pb[c] + cpu::load(rr, c)));
    } else {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c)
        cpu::store(yr, c, act_fwd<A>(cpu::load(xr, c) * pa[c] + pb[c]));
    }
  }
}

// dz = dy * act'(y); dbeta = sum dz, dgamma = sum dz * xhat; with batch statistics
// dx = gamma rstd (dz - mean(dz) - xhat mean(dz xhat)), else dx = gamma rstd dz.
template <typename T, typename G, FusedAct A>
void backward(const G* dy, const T* x, const T* y, const float* gamma, const float* mean,
              const float* rstd, const BatchNormArgs& args, T* dx, float* dgamma, float* dbeta,
              T* dres, int64_t rows, int64_t C) {
  std::vector<double> s;
  channel_sums(
      rows, C,
      [&](int64_t r, float* __restrict s1, float* __restrict s2) {
        const T* xr = x + r * C;
        const T* yr = y + r * C;
        const G* gr = dy + r * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const float dz = cpu::load(gr, c) * act_pass<A>(cpu::load(yr, c));
          s1[c] += dz;
          s2[c] += dz * (cpu::load(xr, c) - mean[c]);
        }
      },
      s);
  std::vector<float> k1(C), k2(C), k3(C);
  const double inv = rows > 0 ? 1.0 / static_cast<double>(rows) : 0.0;
  for (int64_t c = 0; c < C; ++c) {
    dbeta[c] = static_cast<float>(s[c]);
    dgamma[c] = static_cast<float>(s[C + c] * rstd[c]);
    // dx = k1 * dz + k2 + k3 * (x - mean)
    k1[c] = gamma[c] * rstd[c];
    k2[c] = args.batch_stats ? static_cast<float>(-k1[c] * s[c] * inv) : 0.0f;
    k3[c] = args.batch_stats ? static_cast<float>(-k1[c] * s[C + c] * inv * rstd[c] * rstd[c])
                             : 0.0f;
  }
  const float* __restrict p1 = k1.data();
  const float* __restrict p2 = k2.data();
  const float* __restrict p3 = k3.data();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* __restrict xr = x + r * C;
    const T* __restrict yr = y + r * C;
    const G* __restrict gr = dy + r * C;
    T* __restrict dxr = dx + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      const float dz = cpu::load(gr, c) * act_pass<A>(cpu::load(yr, c));
      cpu::store(dxr, c, p1[c] * dz + p2[c] + p3[c] * (cpu::load(xr, c) - mean[c]));
    }
    if (dres) {
      T* __restrict drr = dres + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) cpu::store(drr, c, cpu::load(gr, c) * act_pass<A>(cpu::load(yr, c)));
    }
  }
}

void require(bool ok, const char* what) {
  if (!ok) throw ShapeError(what);
}

}  // namespace

void CpuBackend::batchnorm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                           const Tensor& residual, const Tensor& running_mean,
                           const Tensor& running_var, const BatchNormArgs& args,
                           const Tensor& mean, const Tensor& var, const Tensor& rstd,
                           const Tensor& y) {
  require(y.dtype() == x.dtype(), "batchnorm wants y in the dtype of x");
  require(!residual.defined() || residual.dtype() == x.dtype(),
          "batchnorm wants the residual in the dtype of x");
  const int64_t C = x.shape().last(), rows = C ? x.numel() / C : 0;
  float* m = mean.data<float>();
  float* v = var.data<float>();
  float* rs = rstd.data<float>();
  cpu::dispatch_float(x.dtype(), [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if (args.batch_stats) {
      stats<T>(x.data<T>(), rows, C, args.eps, m, v, rs);
    } else {
      const float* rm = running_mean.data<float>();
      const float* rv = running_var.data<float>();
      for (int64_t c = 0; c < C; ++c) {
        m[c] = rm[c];
        v[c] = rv[c];
        rs[c] = 1.0f / std::sqrt(rv[c] + args.eps);
      }
    }
    const T* res = residual.defined() ? residual.data<T>() : nullptr;
    dispatch_act(args.act, [&](auto a) {
      normalize<T, decltype(a)::value>(x.data<T>(), res, gamma.data<float>(), beta.data<float>(),
                                       m, rs, y.data<T>(), rows, C);
    });
  });
}

void CpuBackend::batchnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& y,
                                    const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                                    const BatchNormArgs& args, const Tensor& dx,
                                    const Tensor& dgamma, const Tensor& dbeta,
                                    const Tensor& dresidual) {
  require(dx.dtype() == x.dtype() && y.dtype() == x.dtype(),
          "batchnorm_backward wants x, y and dx in one dtype");
  require(!dresidual.defined() || dresidual.dtype() == x.dtype(),
          "batchnorm_backward wants the residual gradient in the dtype of x");
  const int64_t C = x.shape().last(), rows = C ? x.numel() / C : 0;
  cpu::dispatch_float(x.dtype(), [&](auto xtag) {
    using T = std::remove_pointer_t<decltype(xtag)>;
    cpu::dispatch_float(dy.dtype(), [&](auto gtag) {
      using G = std::remove_pointer_t<decltype(gtag)>;
      T* dres = dresidual.defined() ? dresidual.data<T>() : nullptr;
      dispatch_act(args.act, [&](auto a) {
        backward<T, G, decltype(a)::value>(dy.data<G>(), x.data<T>(), y.data<T>(),
                                           gamma.data<float>(), mean.data<float>(),
                                           rstd.data<float>(), args, dx.data<T>(),
                                           dgamma.data<float>(), dbeta.data<float>(), dres, rows, C);
      });
    });
  });
}

}  // namespace bb
