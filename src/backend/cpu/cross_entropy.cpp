// Cross-entropy fused with log-softmax: per row one pass from memory computing the max and
// the sum of exponentials together and, when the gradient is wanted, one writing
// softmax - onehot from cache. Rows run in parallel; per-row losses are added serially in
// double, so the loss is reproducible and independent of the thread count.
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/elem.h"
#include "backend/cpu/vec_math.h"
#include "core/error.h"

namespace bb {

namespace {

using cpu::fast_exp;


// A row is walked in chunks small enough to stay in L1, so each logit comes from memory once
// for the max and the sum of exponentials together (an online softmax: the running sum is
// rescaled when a chunk raises the max).
constexpr int64_t kChunk = 2048;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct RowStats {
  float max, sum;  // sum of exp(x - max)
};

// When `stash` is given (the gradient is wanted), it receives exp(x - running max) and
// chunk_max[c] the running max chunk c was exponentiated against, so the gradient pass is
// one multiply per element instead of a second exp.
template <typename T>
RowStats row_stats(const T* __restrict x, int64_t v, float* __restrict stash, float* chunk_max) {
  float m = kNegInf, s = 0.0f;
  for (int64_t c0 = 0, c = 0; c0 < v; c0 += kChunk, ++c) {
    const int64_t len = std::min(kChunk, v - c0);
    const T* __restrict xc = x + c0;
    float cm = kNegInf;
#pragma omp simd reduction(max : cm)
    for (int64_t j = 0; j < len; ++j) cm = std::max(cm, cpu::load(xc, j));
    if (cm > m) {
      s *= fast_exp(m - cm);  // exp(-inf) is 0: the first chunk starts the sum
      m = cm;
    }
    float cs = 0.0f;
    if (stash) {
      chunk_max[c] = m;
      float* __restrict st = stash + c0;
#pragma omp simd reduction(+ : cs)
      for (int64_t j = 0; j < len; ++j) {
        const float e = fast_exp(cpu::load(xc, j) - m);
        st[j] = e;
        cs += e;
      }
    } else {
#pragma omp simd reduction(+ : cs)
      for (int64_t j = 0; j < len; ++j) cs += fast_exp(cpu::load(xc, j) - m);
    }
    // An all -inf prefix (masked logits) leaves m = -inf and x - m = NaN: it adds nothing.
    if (m != kNegInf) s += cs;
    else if (stash) std::fill(stash + c0, stash + c0 + len, 0.0f);
  }
  return {m, s};
}

// T: the logits' type; G: the gradient's (f32 logits may give a 16-bit gradient directly,
// which the products of a 16-bit head read, without an f32 gradient and a cast between).
template <typename T, typename G>
void cross_entropy_kernel(const T* logits, const int64_t* targets, int64_t ignore_index,
                          G* dlogits, float grad_scale, double* row_loss, int64_t rows,
                          int64_t v) {
  // An f32 gradient row holds the stashed exponentials itself; a 16-bit one gets them from
  // an f32 scratch row per thread (so the gradient is rounded once, at the end).
  constexpr bool kInPlace = std::is_same_v<G, float>;
#pragma omp parallel if (rows * v > (1 << 15))
  {
    std::vector<float> chunk_max((v + kChunk - 1) / kChunk);
    std::vector<float> scratch(dlogits && !kInPlace ? v : 0);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T* __restrict x = logits + r * v;
      G* __restrict dl = dlogits ? dlogits + r * v : nullptr;
      const int64_t t = targets[r];
      if (t == ignore_index) {
        row_loss[r] = 0.0;
        if (dl) std::memset(static_cast<void*>(dl), 0, sizeof(G) * v);  // +0 in every format
        continue;
      }
      float* stash = nullptr;
      if (dl) {
        if constexpr (kInPlace) stash = dl;
        else stash = scratch.data();
      }
      const RowStats st = row_stats(x, v, stash, chunk_max.data());
      const float xt = cpu::load(x, t);
      row_loss[r] = static_cast<double>(st.max) + std::log(static_cast<double>(st.sum)) - xt;
      if (!dl) continue;
      const float k = grad_scale / st.sum;
      for (int64_t c0 = 0, c = 0; c0 < v; c0 += kChunk, ++c) {
        const int64_t len = std::min(kChunk, v - c0);
        const float f = fast_exp(chunk_max[c] - st.max) * k;
        const float* __restrict e = stash + c0;
        G* __restrict d = dl + c0;
#pragma omp simd
        for (int64_t j = 0; j < len; ++j) cpu::store(d, j, e[j] * f);
      }
      // The target's entry in one rounding, so a bf16 gradient is not rounded twice.
      cpu::store(dl, t, (fast_exp(xt - st.max) / st.sum - 1.0f) * grad_scale);
    }
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
  if (dlogits.defined() && dlogits.dtype() != logits.dtype() && logits.dtype() != DType::F32)
    throw ShapeError("cross_entropy wants dlogits in the logits' dtype " +
                     std::string(dtype_name(logits.dtype())) + " (or any float dtype from f32 logits), got " +
                     std::string(dtype_name(dlogits.dtype())));
  if (dlogits.defined() && !is_float(dlogits.dtype()))
    throw ShapeError("cross_entropy wants float dlogits, got " + std::string(dtype_name(dlogits.dtype())));
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
    cpu::dispatch_float(dlogits.defined() ? dlogits.dtype() : logits.dtype(), [&](auto gtag) {
      using G = std::remove_pointer_t<decltype(gtag)>;
      if constexpr (std::is_same_v<T, G> || std::is_same_v<T, float>)
        cross_entropy_kernel<T, G>(logits.data<T>(), tg, ignore_index,
                                   dlogits.defined() ? dlogits.data<G>() : nullptr, grad_scale,
                                   row_loss.data(), rows, v);
    });
  });
  double total = 0.0;
  for (double l : row_loss) total += l;
  loss.data<float>()[0] = static_cast<float>(total);
  counted.data<float>()[0] = static_cast<float>(n_counted);
}

}  // namespace bb
