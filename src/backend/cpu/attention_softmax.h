// The softmax pieces of the CPU attention kernel (attention.cpp): the online softmax over a
// tile of scores and the backward's recomputed probabilities and score gradients, with exp
// in AVX-512 registers or vec_math's fast_exp. Included by attention.cpp alone.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>


#include "backend/cpu/attention_products.h"
#include "backend/cpu/vec_math.h"

namespace bb::cpu::flash {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

#ifdef __AVX512F__
inline __m512 exp512(__m512 x) {
  // Cephes expf: x = n ln2 + f, |f| <= ln2/2, exp(f) by a degree-7 polynomial, times 2^n.
  // Clamping keeps 2^n normal; exp(-87) ~ 1.6e-38 stands in for 0.
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
  using namespace exp_coef;
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 f = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x);
  f = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), f);
  __m512 p = _mm512_set1_ps(kPoly[0]);
  for (int i = 1; i < 6; ++i) p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kPoly[i]));
  const __m512 y = _mm512_fmadd_ps(p, _mm512_mul_ps(f, f), _mm512_add_ps(f, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(y, n);
}
#endif


// One backward row, zero outside the visible keys [lo, n) (up to kTile): p = exp(scale * s -
// lse) are the probabilities, and ds = scale * p * (dp - di) the scores' gradient, the scale
// of q k^T folded in. On entry p holds q.k and ds holds dout.v.
inline void grad_row(float* p, float* ds, int lo, int n, float scale, float lse, float di) {
#ifdef __AVX512F__
  const __m512 vs = _mm512_set1_ps(scale), vl = _mm512_set1_ps(lse), vd = _mm512_set1_ps(di);
  for (int c = 0; c < kTile; c += 16) {
    const __mmask16 m = tail_mask(n - c) & __mmask16(~tail_mask(lo - c));
    const __m512 x = _mm512_fmsub_ps(_mm512_loadu_ps(p + c), vs, vl);
    const __m512 e = _mm512_maskz_mov_ps(m, exp512(x));
    _mm512_storeu_ps(p + c, e);
    const __m512 g =
        _mm512_mul_ps(_mm512_mul_ps(vs, e), _mm512_sub_ps(_mm512_loadu_ps(ds + c), vd));
    _mm512_storeu_ps(ds + c, _mm512_maskz_mov_ps(m, g));  // dout.v past n may be stale
  }
#else
#pragma omp simd
  for (int c = 0; c < kTile; ++c) {
    const bool seen = c >= lo && c < n;
    const float e = seen ? cpu::fast_exp(p[c] * scale - lse) : 0.0f;
    p[c] = e;
    ds[c] = seen ? scale * e * (ds[c] - di) : 0.0f;
  }
#endif
}

// One online-softmax step on a tile of S^T (nk keys x nq queries, rows kTile apart): key c
// is visible to query r when c <= r + diag and, for packed rows (lo not null), when key
// j0 + c is at or after lo[r], the first key of r's document. Updates each query's running
// max and sum, turns the tile into probabilities (invisible entries exact zeros) and leaves
// in alpha the factor by which earlier output must be rescaled. A query that sees no key of
// the tile keeps its max and sum.
#ifdef __AVX512F__
inline void softmax_columns(float* st, int nk, int nq, int diag, const int* lo, int j0, float* mx, float* sum,
                     float* alpha) {
  for (int q0 = 0; q0 < nq; q0 += 16) {
    const __m512i first = lo ? _mm512_loadu_si512(lo + q0) : _mm512_setzero_si512();
    auto visible = [&](int c) {  // lanes q0 + l with q0 + l >= c - diag, and lo <= j0 + c
      const int from = c - diag - q0;
      const __mmask16 causal =
          from <= 0 ? __mmask16(0xffff) : from >= 16 ? __mmask16(0) : __mmask16(0xffffu << from);
      return lo ? __mmask16(causal & _mm512_cmple_epi32_mask(first, _mm512_set1_epi32(j0 + c))) : causal;
    };
    __m512 tile_max = _mm512_set1_ps(kNegInf);
    for (int c = 0; c < nk; ++c) {
      const __m512 x = _mm512_loadu_ps(st + c * kTile + q0);
      tile_max = _mm512_mask_max_ps(tile_max, visible(c), tile_max, x);
    }
    const __m512 m_old = _mm512_loadu_ps(mx + q0), m_new = _mm512_max_ps(m_old, tile_max);
    // A query that has seen nothing yet keeps max -inf; subtract 0 instead so no inf - inf.
    const __m512 m_sub = _mm512_mask_blend_ps(
        _mm512_cmp_ps_mask(m_new, _mm512_set1_ps(kNegInf), _CMP_EQ_OQ), m_new, _mm512_setzero_ps());
    __m512 tile_sum = _mm512_setzero_ps();
    for (int c = 0; c < nk; ++c) {
      float* row = st + c * kTile + q0;
      const __m512 x = _mm512_sub_ps(_mm512_loadu_ps(row), m_sub);
      const __m512 e = _mm512_maskz_mov_ps(visible(c), exp512(x));
      _mm512_storeu_ps(row, e);
      tile_sum = _mm512_add_ps(tile_sum, e);
    }
    const __m512 a = exp512(_mm512_sub_ps(m_old, m_sub));  // ~0 when m_old is -inf
    _mm512_storeu_ps(alpha + q0, a);
    _mm512_storeu_ps(sum + q0, _mm512_fmadd_ps(_mm512_loadu_ps(sum + q0), a, tile_sum));
    _mm512_storeu_ps(mx + q0, m_new);
  }
}
#else
// The same down columns of queries, so the inner loops run along contiguous queries.
inline void softmax_columns(float* st, int nk, int nq, int diag, const int* lo, int j0, float* mx, float* sum,
                     float* alpha) {
  alignas(64) float m_sub[kTile], tile_sum[kTile], m_new[kTile];
  // Without packed rows every query's document starts at key 0. Reading zeros rather than
  // testing lo keeps the loops free of masked loads from a null pointer, which AMD cores
  // serve through a slow assist (three quarters of this function's time on a Zen 3).
  alignas(64) static constexpr int kFromZero[kTile] = {};
  const int* first = lo ? lo : kFromZero;
  auto visible = [&](int c, int r) { return c <= r + diag && first[r] <= j0 + c; };
  for (int r = 0; r < nq; ++r) m_new[r] = mx[r], tile_sum[r] = 0.0f;
  for (int c = 0; c < nk; ++c) {
    const float* row = st + c * kTile;
#pragma omp simd
    for (int r = 0; r < nq; ++r) m_new[r] = visible(c, r) ? std::max(m_new[r], row[r]) : m_new[r];
  }
  // A query that has seen nothing yet keeps max -inf; subtract 0 instead so no inf - inf.
  for (int r = 0; r < nq; ++r) m_sub[r] = m_new[r] == kNegInf ? 0.0f : m_new[r];
  for (int c = 0; c < nk; ++c) {
    float* row = st + c * kTile;
#pragma omp simd
    for (int r = 0; r < nq; ++r) {
      const float e = visible(c, r) ? cpu::fast_exp(row[r] - m_sub[r]) : 0.0f;
      row[r] = e;
      tile_sum[r] += e;
    }
  }
#pragma omp simd
  for (int r = 0; r < nq; ++r) {
    alpha[r] = cpu::fast_exp(mx[r] - m_sub[r]);  // 0 when mx is -inf
    sum[r] = sum[r] * alpha[r] + tile_sum[r];
    mx[r] = m_new[r];
  }
}
#endif
}  // namespace bb::cpu::flash
