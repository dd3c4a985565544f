// GroupNorm over channels-last activations (N, HW, C): each image's channels split into G
// groups of C/G, normalised over (HW, C/G). Statistics in f32 from double sums; images are
// the parallel unit, and the parameter gradients are summed per thread, then in thread order.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/elem.h"
#include "core/error.h"

namespace bb {
namespace {

// Per-channel sums over one image's HW rows of f(x, c), in double.
template <typename T, typename F>
void image_channel_sums(const T* x, int64_t hw, int64_t C, F f, double* out) {
  std::fill(out, out + C, 0.0);
  for (int64_t r = 0; r < hw; ++r) {
    const T* xr = x + r * C;
    for (int64_t c = 0; c < C; ++c) out[c] += f(cpu::load(xr, c), c);
  }
}

template <typename T>
void gn_fwd(const T* x, const float* gamma, const float* beta, int64_t N, int64_t hw, int64_t C,
            int64_t G, float eps, T* y, float* mean, float* rstd) {
  const int64_t cg = C / G;
  const double count = static_cast<double>(hw * cg);
#pragma omp parallel
  {
    std::vector<double> s(C);
    std::vector<float> gm(C), a(C), b(C);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const T* xn = x + n * hw * C;
      // Two passes (mean, then centred squares): no cancellation.
      image_channel_sums(xn, hw, C, [](float v, int64_t) { return double(v); }, s.data());
      for (int64_t g = 0; g < G; ++g) {
        double m = 0;
        for (int64_t j = 0; j < cg; ++j) m += s[g * cg + j];
        mean[n * G + g] = static_cast<float>(m / count);
        for (int64_t j = 0; j < cg; ++j) gm[g * cg + j] = mean[n * G + g];
      }
      image_channel_sums(xn, hw, C, [&](float v, int64_t c) { double d = v - gm[c]; return d * d; },
                         s.data());
      for (int64_t g = 0; g < G; ++g) {
        double v = 0;
        for (int64_t j = 0; j < cg; ++j) v += s[g * cg + j];
        rstd[n * G + g] = static_cast<float>(1.0 / std::sqrt(v / count + eps));
        for (int64_t j = 0; j < cg; ++j) {
          const int64_t c = g * cg + j;
          a[c] = rstd[n * G + g] * gamma[c];
          b[c] = beta[c] - gm[c] * a[c];
        }
      }
      T* yn = y + n * hw * C;
      for (int64_t r = 0; r < hw; ++r) {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) cpu::store(yn + r * C, c, cpu::load(xn + r * C, c) * a[c] + b[c]);
      }
    }
  }
}

// dx = rstd (g - mean_group(g) - xhat mean_group(g xhat)) with g = dy * gamma.
template <typename T, typename G>
void gn_bwd(const G* dy, const T* x, const float* gamma, const float* mean, const float* rstd,
            int64_t N, int64_t hw, int64_t C, int64_t groups, T* dx, float* dgamma,
            float* dbeta) {
  const int64_t cg = C / groups;
  const double count = static_cast<double>(hw * cg);
  const int nt = omp_get_max_threads();
  std::vector<double> part(static_cast<size_t>(nt) * 2 * C, 0.0);
  int used = 1;
#pragma omp parallel
  {
    const int t = omp_get_thread_num();
#pragma omp single
    used = omp_get_num_threads();
    double* pg = part.data() + t * 2 * C;
    double* pb = pg + C;
    std::vector<double> sdy(C), sdyx(C);
    std::vector<float> xm(C), rs(C), k2(C), k3(C);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const T* xn = x + n * hw * C;
      const G* dn = dy + n * hw * C;
      for (int64_t c = 0; c < C; ++c) {
        xm[c] = mean[n * groups + c / cg];
        rs[c] = rstd[n * groups + c / cg];
      }
      std::fill(sdy.begin(), sdy.end(), 0.0);
      std::fill(sdyx.begin(), sdyx.end(), 0.0);
      for (int64_t r = 0; r < hw; ++r)
        for (int64_t c = 0; c < C; ++c) {
          const float d = cpu::load(dn + r * C, c);
          const float xh = (cpu::load(xn + r * C, c) - xm[c]) * rs[c];
          sdy[c] += d;
          sdyx[c] += d * xh;
        }
      for (int64_t c = 0; c < C; ++c) {
        pb[c] += sdy[c];
        pg[c] += sdyx[c];
      }
      for (int64_t g = 0; g < groups; ++g) {
        double a = 0, b = 0;
        for (int64_t j = 0; j < cg; ++j) {
          const int64_t c = g * cg + j;
          a += sdy[c] * gamma[c];
          b += sdyx[c] * gamma[c];
        }
        for (int64_t j = 0; j < cg; ++j) {
          const int64_t c = g * cg + j;
          k2[c] = static_cast<float>(a / count);
          k3[c] = static_cast<float>(b / count);
        }
      }
      T* dxn = dx + n * hw * C;
      for (int64_t r = 0; r < hw; ++r) {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const float xh = (cpu::load(xn + r * C, c) - xm[c]) * rs[c];
          cpu::store(dxn + r * C, c, rs[c] * (cpu::load(dn + r * C, c) * gamma[c] - k2[c] - xh * k3[c]));
        }
      }
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    double g = 0, b = 0;
    for (int t = 0; t < used; ++t) {
      g += part[t * 2 * C + c];
      b += part[t * 2 * C + C + c];
    }
    dgamma[c] = static_cast<float>(g);
    dbeta[c] = static_cast<float>(b);
  }
}

}  // namespace

void CpuBackend::groupnorm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                           int64_t groups, float eps, const Tensor& y, const Tensor& mean,
                           const Tensor& rstd) {
  if (y.dtype() != x.dtype()) throw ShapeError("groupnorm wants y in the dtype of x");
  const int64_t N = x.dim(0), C = x.shape().last(), hw = N && C ? x.numel() / (N * C) : 0;
  cpu::dispatch_float(x.dtype(), [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    gn_fwd<T>(x.data<T>(), gamma.data<float>(), beta.data<float>(), N, hw, C, groups, eps,
              y.data<T>(), mean.data<float>(), rstd.data<float>());
  });
}

void CpuBackend::groupnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                    const Tensor& mean, const Tensor& rstd, int64_t groups,
                                    const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta) {
  if (dx.dtype() != x.dtype()) throw ShapeError("groupnorm_backward wants dx in the dtype of x");
  const int64_t N = x.dim(0), C = x.shape().last(), hw = N && C ? x.numel() / (N * C) : 0;
  cpu::dispatch_float(x.dtype(), [&](auto xtag) {
    using T = std::remove_pointer_t<decltype(xtag)>;
    cpu::dispatch_float(dy.dtype(), [&](auto gtag) {
      using G = std::remove_pointer_t<decltype(gtag)>;
      gn_bwd<T, G>(dy.data<G>(), x.data<T>(), gamma.data<float>(), mean.data<float>(),
                   rstd.data<float>(), N, hw, C, groups, dx.data<T>(), dgamma.data<float>(),
                   dbeta.data<float>());
    });
  });
}

}  // namespace bb
