// LayerNorm and RMSNorm over the last dim, forward and backward. Statistics are f32, one row
// per loop iteration; the parameter gradients are reduced over rows through per-thread
// partial sums added in thread order, so they are bit-identical run to run.
#include <omp.h>

#include <cmath>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/elem.h"
#include "core/error.h"

namespace bb {

namespace {

// Below this many elements a kernel stays on one thread: waking the team costs more.
constexpr int64_t kParallelMin = 1 << 14;

void require_float(const Tensor& t, const char* op, const char* name) {
  if (!is_float(t.dtype()))
    throw ShapeError(std::string(op) + " wants a float " + name + ", got " +
                     std::string(dtype_name(t.dtype())));
}

void require_f32(const Tensor& t, const char* op, const char* name) {
  if (t.defined() && t.dtype() != DType::F32)
    throw ShapeError(std::string(op) + " wants " + name + " in f32, got " +
                     std::string(dtype_name(t.dtype())));
}

template <typename T>
float row_sum(const T* __restrict x, int64_t c) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < c; ++j) s += cpu::load(x, j);
  return s;
}

template <typename T>
void layernorm_fwd(const T* x, const float* gamma, const float* beta, float eps, T* y,
                   float* mean, float* rstd, int64_t rows, int64_t c) {
  const float inv_c = 1.0f / static_cast<float>(c);
#pragma omp parallel for schedule(static) if (rows * c > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* __restrict xr = x + r * c;
    T* __restrict yr = y + r * c;
    // Two passes over a row that sits in L1: the centred variance does not cancel.
    const float mu = row_sum(xr, c) * inv_c;
    float var = 0.0f;
#pragma omp simd reduction(+ : var)
    for (int64_t j = 0; j < c; ++j) {
      float d = cpu::load(xr, j) - mu;
      var += d * d;
    }
    const float rs = 1.0f / std::sqrt(var * inv_c + eps);
    mean[r] = mu;
    rstd[r] = rs;
    if (beta) {
#pragma omp simd
      for (int64_t j = 0; j < c; ++j)
        cpu::store(yr, j, (cpu::load(xr, j) - mu) * rs * gamma[j] + beta[j]);
    } else {
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) cpu::store(yr, j, (cpu::load(xr, j) - mu) * rs * gamma[j]);
    }
  }
}

template <typename T>
void rmsnorm_fwd(const T* x, const float* gamma, float eps, T* y, float* rstd, int64_t rows,
                 int64_t c) {
  const float inv_c = 1.0f / static_cast<float>(c);
#pragma omp parallel for schedule(static) if (rows * c > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* __restrict xr = x + r * c;
    T* __restrict yr = y + r * c;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int64_t j = 0; j < c; ++j) {
      float v = cpu::load(xr, j);
      ss += v * v;
    }
    const float rs = 1.0f / std::sqrt(ss * inv_c + eps);
    rstd[r] = rs;
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) cpu::store(yr, j, cpu::load(xr, j) * rs * gamma[j]);
  }
}

// Per-thread partial sums of the parameter gradients: thread t owns `per_thread` floats at
// t * per_thread. The final reduction adds them in thread order, column-parallel.
struct Partials {
  std::vector<float> buf;
  int64_t per_thread;
  explicit Partials(int64_t per_thread_) : per_thread(per_thread_) {
    buf.assign(static_cast<size_t>(omp_get_max_threads()) * per_thread, 0.0f);
  }
  float* of(int t) { return buf.data() + t * per_thread; }
  // Called by every thread of the team after a barrier: out[j] = sum_t part_t[base + j],
  // added in thread order; each thread takes a column block so the inner loop vectorises.
  void reduce_into(float* __restrict out, int64_t base, int64_t n, int nt, int t) {
    const int64_t j0 = n * t / nt, j1 = n * (t + 1) / nt;
    const float* first = buf.data() + base;
#pragma omp simd
    for (int64_t j = j0; j < j1; ++j) out[j] = first[j];
    for (int s = 1; s < nt; ++s) {
      const float* __restrict p = buf.data() + s * per_thread + base;
#pragma omp simd
      for (int64_t j = j0; j < j1; ++j) out[j] += p[j];
    }
  }
};

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma, xhat = (x - mean)
// * rstd; dgamma = sum over rows of dy * xhat, dbeta = sum of dy.
template <typename T, typename G>
void layernorm_bwd(const G* dy, const T* x, const float* gamma, const float* mean,
                   const float* rstd, T* dx, float* dgamma, float* dbeta, int64_t rows,
                   int64_t c) {
  const float inv_c = 1.0f / static_cast<float>(c);
  Partials part(2 * c);
#pragma omp parallel if (rows * c > kParallelMin)
  {
    const int nt = omp_get_num_threads(), t = omp_get_thread_num();
    float* __restrict pg = part.of(t);
    float* __restrict pb = pg + c;
    const int64_t r0 = rows * t / nt, r1 = rows * (t + 1) / nt;
    for (int64_t r = r0; r < r1; ++r) {
      const T* __restrict xr = x + r * c;
      const G* __restrict dyr = dy + r * c;
      T* __restrict dxr = dx + r * c;
      const float mu = mean[r], rs = rstd[r];
      float sum_g = 0.0f, sum_gx = 0.0f;
#pragma omp simd reduction(+ : sum_g, sum_gx)
      for (int64_t j = 0; j < c; ++j) {
        const float xh = (cpu::load(xr, j) - mu) * rs;
        const float d = cpu::load(dyr, j);
        const float g = d * gamma[j];
        sum_g += g;
        sum_gx += g * xh;
        pg[j] += d * xh;
        pb[j] += d;
      }
      const float a = sum_g * inv_c, b = sum_gx * inv_c;
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) {
        const float xh = (cpu::load(xr, j) - mu) * rs;
        cpu::store(dxr, j, rs * (cpu::load(dyr, j) * gamma[j] - a - xh * b));
      }
    }
#pragma omp barrier
    part.reduce_into(dgamma, 0, c, nt, t);
    if (dbeta) part.reduce_into(dbeta, c, c, nt, t);
  }
}

// dx = rstd * (g - xhat * mean(g * xhat)) with g = dy * gamma, xhat = x * rstd;
// dgamma = sum over rows of dy * xhat.
template <typename T, typename G>
void rmsnorm_bwd(const G* dy, const T* x, const float* gamma, const float* rstd, T* dx,
                 float* dgamma, int64_t rows, int64_t c) {
  const float inv_c = 1.0f / static_cast<float>(c);
  Partials part(c);
#pragma omp parallel if (rows * c > kParallelMin)
  {
    const int nt = omp_get_num_threads(), t = omp_get_thread_num();
    float* __restrict pg = part.of(t);
    const int64_t r0 = rows * t / nt, r1 = rows * (t + 1) / nt;
    for (int64_t r = r0; r < r1; ++r) {
      const T* __restrict xr = x + r * c;
      const G* __restrict dyr = dy + r * c;
      T* __restrict dxr = dx + r * c;
      const float rs = rstd[r];
      float sum_gx = 0.0f;
#pragma omp simd reduction(+ : sum_gx)
      for (int64_t j = 0; j < c; ++j) {
        const float xh = cpu::load(xr, j) * rs;
        const float d = cpu::load(dyr, j);
        sum_gx += d * gamma[j] * xh;
        pg[j] += d * xh;
      }
      const float b = sum_gx * inv_c;
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) {
        const float xh = cpu::load(xr, j) * rs;
        cpu::store(dxr, j, rs * (cpu::load(dyr, j) * gamma[j] - xh * b));
      }
    }
#pragma omp barrier
    part.reduce_into(dgamma, 0, c, nt, t);
  }
}

}  // namespace

void CpuBackend::layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                           const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  require_float(x, "layernorm", "x");
  if (y.dtype() != x.dtype()) throw ShapeError("layernorm wants y in the dtype of x");
  require_f32(gamma, "layernorm", "gamma");
  require_f32(beta, "layernorm", "beta");
  const int64_t c = x.shape().last();
  if (x.numel() == 0 || c == 0) return;
  const int64_t rows = x.numel() / c;
  const float* b = beta.defined() ? beta.data<float>() : nullptr;
  cpu::dispatch_float(x.dtype(), [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    layernorm_fwd<T>(x.data<T>(), gamma.data<float>(), b, eps, y.data<T>(), mean.data<float>(),
                     rstd.data<float>(), rows, c);
  });
}

void CpuBackend::layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                    const Tensor& mean, const Tensor& rstd, const Tensor& dx,
                                    const Tensor& dgamma, const Tensor& dbeta) {
  require_float(x, "layernorm_backward", "x");
  require_float(dy, "layernorm_backward", "dy");
  if (dx.dtype() != x.dtype()) throw ShapeError("layernorm_backward wants dx in the dtype of x");
  require_f32(dgamma, "layernorm_backward", "dgamma");
  require_f32(dbeta, "layernorm_backward", "dbeta");
  const int64_t c = x.shape().last();
  if (c == 0) return;  // rows == 0 still writes zero dgamma / dbeta
  const int64_t rows = x.numel() / c;
  float* db = dbeta.defined() ? dbeta.data<float>() : nullptr;
  cpu::dispatch_float(x.dtype(), [&](auto xtag) {
    using T = std::remove_pointer_t<decltype(xtag)>;
    cpu::dispatch_float(dy.dtype(), [&](auto gtag) {
      using G = std::remove_pointer_t<decltype(gtag)>;
      layernorm_bwd<T, G>(dy.data<G>(), x.data<T>(), gamma.data<float>(), mean.data<float>(),
                          rstd.data<float>(), dx.data<T>(), dgamma.data<float>(), db, rows, c);
    });
  });
}

void CpuBackend::rmsnorm(const Tensor& x, const Tensor& gamma, float eps, const Tensor& y,
                         const Tensor& rstd) {
  require_float(x, "rmsnorm", "x");
  if (y.dtype() != x.dtype()) throw ShapeError("rmsnorm wants y in the dtype of x");
  require_f32(gamma, "rmsnorm", "gamma");
  const int64_t c = x.shape().last();
  if (x.numel() == 0 || c == 0) return;
  const int64_t rows = x.numel() / c;
  cpu::dispatch_float(x.dtype(), [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    rmsnorm_fwd<T>(x.data<T>(), gamma.data<float>(), eps, y.data<T>(), rstd.data<float>(), rows,
                   c);
  });
}

void CpuBackend::rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                  const Tensor& rstd, const Tensor& dx, const Tensor& dgamma) {
  require_float(x, "rmsnorm_backward", "x");
  require_float(dy, "rmsnorm_backward", "dy");
  if (dx.dtype() != x.dtype()) throw ShapeError("rmsnorm_backward wants dx in the dtype of x");
  require_f32(dgamma, "rmsnorm_backward", "dgamma");
  const int64_t c = x.shape().last();
  if (c == 0) return;  // rows == 0 still writes zero dgamma
  const int64_t rows = x.numel() / c;
  cpu::dispatch_float(x.dtype(), [&](auto xtag) {
    using T = std::remove_pointer_t<decltype(xtag)>;
    cpu::dispatch_float(dy.dtype(), [&](auto gtag) {
      using G = std::remove_pointer_t<decltype(gtag)>;
      rmsnorm_bwd<T, G>(dy.data<G>(), x.data<T>(), gamma.data<float>(), rstd.data<float>(),
                        dx.data<T>(), dgamma.data<float>(), rows, c);
    });
  });
}

}  // namespace bb
