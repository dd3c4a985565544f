// Max and average pooling over channels-last tensors (N, H, W, C), forward and backward.
// Every loop runs over C innermost, so it vectorises; sums are kept in f32 whatever the
// storage dtype. Average pooling divides by KH*KW (PyTorch's count_include_pad default).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/elem.h"
#include "core/error.h"

namespace bb {
namespace {

// The input rows [lo, hi) a window starting at `start` covers, clipped to the image.
inline void clip(int64_t start, int64_t k, int64_t size, int64_t& lo, int64_t& hi) {
  lo = std::max<int64_t>(start, 0);
  hi = std::min<int64_t>(start + k, size);
}

// Calls f(ow, h0, h1, w0, w1) for each output pixel of output row `oh`, with [h0, h1) x
// [w0, w1) its window clipped to the image.
template <typename F>
inline void for_row_windows(const PoolArgs& a, int64_t oh, F&& f) {
  int64_t h0, h1;
  clip(oh * a.stride_h - a.pad_h, a.kh, a.h, h0, h1);
  for (int64_t ow = 0; ow < a.ow; ++ow) {
    int64_t w0, w1;
    clip(ow * a.stride_w - a.pad_w, a.kw, a.w, w0, w1);
    f(ow, h0, h1, w0, w1);
  }
}

// One forward loop for both pools: each output pixel reduces its (clipped) window with
// `combine` from `init`, then is scaled by `scale` (1 for max, 1/(kh kw) for average).
template <typename T, typename Combine>
void window_fwd(const T* x, T* y, const PoolArgs& a, float init, Combine combine, float scale) {
  const int64_t C = a.c;
#pragma omp parallel
  {
    std::vector<float> acc(C);
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < a.n; ++n)
      for (int64_t oh = 0; oh < a.oh; ++oh)
        for_row_windows(a, oh, [&](int64_t ow, int64_t h0, int64_t h1, int64_t w0, int64_t w1) {
          std::fill(acc.begin(), acc.end(), init);
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) {
              const T* xr = x + ((n * a.h + ih) * a.w + iw) * C;
#pragma omp simd
              for (int64_t c = 0; c < C; ++c) acc[c] = combine(acc[c], cpu::load(xr, c));
            }
          T* yr = y + ((n * a.oh + oh) * a.ow + ow) * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) cpu::store(yr, c, acc[c] * scale);
        });
  }
}

template <typename T>
void max_fwd(const T* x, T* y, const PoolArgs& a) {
  window_fwd(x, y, a, -std::numeric_limits<float>::infinity(), [](float m, float v) { return std::max(m, v); }, 1.0f);
}

template <typename T>
void avg_fwd(const T* x, T* y, const PoolArgs& a) {
  window_fwd(x, y, a, 0.0f, [](float s, float v) { return s + v; }, 1.0f / static_cast<float>(a.kh * a.kw));
}

// The gradient goes to the first element of each window equal to its maximum (PyTorch's
// choice on ties). Windows of one image may overlap, so images are the parallel unit.
template <typename T, typename G>
void max_bwd(const T* x, const T* y, const G* dy, T* dx, const PoolArgs& a) {
  const int64_t C = a.c, plane = a.h * a.w * C;
#pragma omp parallel
  {
    std::vector<float> grad(plane);
    std::vector<char> taken(C);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < a.n; ++n) {
      std::fill(grad.begin(), grad.end(), 0.0f);
      for (int64_t oh = 0; oh < a.oh; ++oh)
        for_row_windows(a, oh, [&](int64_t ow, int64_t h0, int64_t h1, int64_t w0, int64_t w1) {
          const int64_t o = ((n * a.oh + oh) * a.ow + ow) * C;
          std::fill(taken.begin(), taken.end(), 0);
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) {
              const int64_t i = ((n * a.h + ih) * a.w + iw) * C;
              float* g = grad.data() + (ih * a.w + iw) * C;
              for (int64_t c = 0; c < C; ++c) {
                const bool hit = !taken[c] && cpu::load(x, i + c) == cpu::load(y, o + c);
                if (hit) g[c] += cpu::load(dy, o + c);
                taken[c] |= hit;
              }
            }
        });
      T* dxn = dx + n * plane;
#pragma omp simd
      for (int64_t j = 0; j < plane; ++j) cpu::store(dxn, j, grad[j]);
    }
  }
}

// Gathered per input pixel (the output pixels whose windows cover it), so every dx element
// is written once and the loop is parallel over pixels.
template <typename T, typename G>
void avg_bwd(const G* dy, T* dx, const PoolArgs& a) {
  const int64_t C = a.c;
  const float inv = 1.0f / static_cast<float>(a.kh * a.kw);
  auto first_out = [](int64_t i, int64_t pad, int64_t k, int64_t s) {
    const int64_t num = i + pad - k + 1;  // smallest o with o*s - pad + k > i
    return num <= 0 ? 0 : (num + s - 1) / s;
  };
#pragma omp parallel
  {
    std::vector<float> acc(C);
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < a.n; ++n)
      for (int64_t ih = 0; ih < a.h; ++ih) {
        const int64_t oh0 = first_out(ih, a.pad_h, a.kh, a.stride_h);
        const int64_t oh1 = std::min(a.oh, (ih + a.pad_h) / a.stride_h + 1);
        for (int64_t iw = 0; iw < a.w; ++iw) {
          const int64_t ow0 = first_out(iw, a.pad_w, a.kw, a.stride_w);
          const int64_t ow1 = std::min(a.ow, (iw + a.pad_w) / a.stride_w + 1);
          std::fill(acc.begin(), acc.end(), 0.0f);
          for (int64_t oh = oh0; oh < oh1; ++oh)
            for (int64_t ow = ow0; ow < ow1; ++ow) {
              const G* g = dy + ((n * a.oh + oh) * a.ow + ow) * C;
#pragma omp simd
              for (int64_t c = 0; c < C; ++c) acc[c] += cpu::load(g, c);
            }
          T* d = dx + ((n * a.h + ih) * a.w + iw) * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) cpu::store(d, c, acc[c] * inv);
        }
      }
  }
}

void require_same(const Tensor& a, const Tensor& b, const char* op) {
  if (a.dtype() != b.dtype()) throw ShapeError(std::string(op) + " wants tensors of one dtype");
}

}  // namespace

void CpuBackend::max_pool2d(const Tensor& x, const Tensor& y, const PoolArgs& a) {
  require_same(x, y, "max_pool2d");
  cpu::dispatch_float(x.dtype(), [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    max_fwd<T>(x.data<T>(), y.data<T>(), a);
  });
}

void CpuBackend::max_pool2d_backward(const Tensor& x, const Tensor& y, const Tensor& dy,
                                     const Tensor& dx, const PoolArgs& a) {
  require_same(x, dx, "max_pool2d_backward");
  cpu::dispatch_float(x.dtype(), [&](auto xtag) {
    using T = std::remove_pointer_t<decltype(xtag)>;
    cpu::dispatch_float(dy.dtype(), [&](auto gtag) {
      using G = std::remove_pointer_t<decltype(gtag)>;
      max_bwd<T, G>(x.data<T>(), y.data<T>(), dy.data<G>(), dx.data<T>(), a);
    });
  });
}

void CpuBackend::avg_pool2d(const Tensor& x, const Tensor& y, const PoolArgs& a) {
  require_same(x, y, "avg_pool2d");
  cpu::dispatch_float(x.dtype(), [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    avg_fwd<T>(x.data<T>(), y.data<T>(), a);
  });
}

void CpuBackend::avg_pool2d_backward(const Tensor& dy, const Tensor& dx, const PoolArgs& a) {
  cpu::dispatch_float(dx.dtype(), [&](auto xtag) {
    using T = std::remove_pointer_t<decltype(xtag)>;
    cpu::dispatch_float(dy.dtype(), [&](auto gtag) {
      using G = std::remove_pointer_t<decltype(gtag)>;
      avg_bwd<T, G>(dy.data<G>(), dx.data<T>(), a);
    });
  });
}

}  // namespace bb
