// Attention of one new query per sequence over a key/value cache, read where it lies: one
// (sequence, head) pair per OpenMP task, scores and softmax in f32 per-thread scratch. The
// cache is read once per query head, so decode is bound by the bandwidth of that read.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/elem.h"

namespace bb {

namespace {
template <class T>
void decode(const T* q, const T* k, const T* v, T* out, int64_t B, int64_t H, int64_t Hkv, int64_t cap,
            int64_t D, int64_t len) {
  const int64_t group = H / Hkv, row = Hkv * D;  // a cached position's stride
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
#pragma omp parallel
  {
    std::vector<float> scores(static_cast<size_t>(len)), qf(static_cast<size_t>(D)), acc(static_cast<size_t>(D));
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < B * H; ++bh) {
      const int64_t b = bh / H, h = bh % H, g = h / group;
      const T* qp = q + (b * H + h) * D;
      const T* kp = k + b * cap * row + g * D;
      const T* vp = v + b * cap * row + g * D;
      for (int64_t d = 0; d < D; ++d) qf[d] = cpu::load(qp, d) * scale;
      float top = -INFINITY;
      for (int64_t t = 0; t < len; ++t) {
        const T* kt = kp + t * row;
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t d = 0; d < D; ++d) s += qf[d] * cpu::load(kt, d);
        scores[t] = s;
        top = std::max(top, s);
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      float sum = 0;
      for (int64_t t = 0; t < len; ++t) {
        const float p = std::exp(scores[t] - top);
        sum += p;
        const T* vt = vp + t * row;
#pragma omp simd
        for (int64_t d = 0; d < D; ++d) acc[d] += p * cpu::load(vt, d);
      }
      T* op = out + (b * H + h) * D;
      for (int64_t d = 0; d < D; ++d) cpu::store(op, d, acc[d] / sum);
    }
  }
}
}  // namespace

void CpuBackend::decode_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, int64_t length,
                                  const Tensor& out) {
  const int64_t B = q.dim(0), H = q.dim(2), D = q.dim(3), cap = k_cache.dim(1), Hkv = k_cache.dim(2);
  cpu::dispatch_float(q.dtype(), [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    decode(q.data<T>(), k_cache.data<T>(), v_cache.data<T>(), out.data<T>(), B, H, Hkv, cap, D, length);
  });
}

}  // namespace bb
