// Memory-efficient (flash-style) attention on the CPU. Forward tiles over keys with an
// online softmax; backward recomputes probabilities from the saved log-sum-exp. All math is
// f32 on 64x64 score tiles in per-thread scratch, multiplied by register-blocked
// micro-kernels (AVX-512 fma, or for bf16 tensors AVX512_BF16 pair products with f32 sums;
// a portable fallback). Head h reads kv head h / (heads / kv_heads); no (seq, seq) matrix
// is ever formed. Packed rows (positions given) narrow each query's keys to its own
// document: the probabilities of earlier documents' keys are exact zeros, and tiles that
// hold only such keys are skipped. The tile products are in attention_products.h, the softmax
// pieces in attention_softmax.h; this file holds the layouts and the forward and backward.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <omp.h>

#include "backend/cpu/attention_products.h"
#include "backend/cpu/attention_softmax.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/elem.h"
#include "backend/cpu/vec_math.h"
#include "core/error.h"

namespace bb {
namespace {

using cpu::load;
using cpu::store;

using namespace cpu::flash;


// Scratch of one call for every thread, through the allocator (counted as workspace, as
// the meta backend counts it, and released when the call ends): thread i works in the i-th
// 64-byte aligned block of `per_thread` floats.
struct Scratch {
  int threads;
  int64_t per_thread;
  Tensor all;
  explicit Scratch(int64_t floats)
      : threads(omp_get_max_threads()), per_thread(round_up(floats, 16) + 16),
        all(Tensor::empty(Shape{threads * per_thread}, DType::F32, Device::CPU, Category::Workspace)) {}
  // All threads' floats for `floats` a thread (what the meta backend allocates).
  static int64_t floats_for(int64_t floats) { return omp_get_max_threads() * (round_up(floats, 16) + 16); }
  float* of_this_thread() const {
    auto p = reinterpret_cast<uintptr_t>(all.data<float>() + omp_get_thread_num() * per_thread);
    return reinterpret_cast<float*>((p + 63) & ~uintptr_t(63));
  }
};


// dst (rows x dp, f32, zero padded) = scale * src rows of d elements, src rows ld apart.
template <typename T>
void load_rows(const T* src, int64_t ld, int64_t rows, int64_t d, float scale, float* dst,
               int64_t dp) {
  for (int64_t t = 0; t < rows; ++t) {
    for (int64_t i = 0; i < d; ++i) dst[t * dp + i] = scale * load(src, t * ld + i);
    for (int64_t i = d; i < dp; ++i) dst[t * dp + i] = 0.0f;
  }
}
#ifdef __AVX512F__
// dst (16 x 16, rows ldd apart) = transpose of src (16 x 16, rows lds apart), in registers:
// interleave 32-bit, then 64-bit pairs within 128-bit lanes, then permute the lanes.
void transpose16(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * lds);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  auto pd = [](__m512 x) { return _mm512_castps_pd(x); };
  for (int g = 0; g < 16; g += 4) {  // r[g + c] = rows g..g+3 of columns 4l + c, lane l
    r[g] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t[g]), pd(t[g + 2])));
    r[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t[g]), pd(t[g + 2])));
    r[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t[g + 1]), pd(t[g + 3])));
    r[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t[g + 1]), pd(t[g + 3])));
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 v0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
    const __m512 v1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
    const __m512 w0 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
    const __m512 w1 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
    _mm512_storeu_ps(dst + c * ldd, _mm512_shuffle_f32x4(v0, w0, 0x88));
    _mm512_storeu_ps(dst + (c + 4) * ldd, _mm512_shuffle_f32x4(v1, w1, 0x88));
    _mm512_storeu_ps(dst + (c + 8) * ldd, _mm512_shuffle_f32x4(v0, w0, 0xdd));
    _mm512_storeu_ps(dst + (c + 12) * ldd, _mm512_shuffle_f32x4(v1, w1, 0xdd));
  }
}
#endif

// dst = transpose of src (rows x dp, f32, rows ld apart) in key tiles: tile j is a
// zero-padded (dp x 64) block at dst + j*64*dp, so a tile's rows are 256 bytes apart rather
// than a whole sequence (which made them collide in the L1 cache's sets).
void transpose_rows(const float* src, int64_t ld, int64_t rows, int64_t dp, float* dst,
                    int64_t tp) {
  std::fill(dst + rows / kTile * kTile * dp, dst + tp * dp, 0.0f);  // the partial last tile
  auto at = [&](int64_t t, int64_t d) {
    return dst + t / kTile * kTile * dp + d * kTile + t % kTile;
  };
  int64_t t = 0;
#ifdef __AVX512F__
  for (; t + 16 <= rows; t += 16)
    for (int64_t d = 0; d < dp; d += 16) transpose16(src + t * ld + d, ld, at(t, d), kTile);
#endif
  for (; t < rows; ++t)
    for (int64_t d = 0; d < dp; ++d) *at(t, d) = src[t * ld + d];
}

// The tensor's data when it is f32 (then used in place), else null (then never used).
template <typename T>
float* as_f32(T* p) {
  if constexpr (std::is_same_v<std::remove_const_t<T>, float>) return const_cast<float*>(p);
  return nullptr;
}

// The problem's sizes, plus head_dim padded to whole vectors (dp) and seq to whole tiles (tp).
struct Dims {
  int64_t b, h, hkv, t, d, group, dp, tp, tiles;
  explicit Dims(const AttentionArgs& a)
      : b(a.batch), h(a.heads), hkv(a.kv_heads), t(a.seq), d(a.head_dim),
        group(a.heads / a.kv_heads), dp(round_up(a.head_dim, 16)), tp(round_up(a.seq, kTile)),
        tiles(tp / kTile) {}
  // Keys of key tile j that query row r of query tile i sees.
  int visible(bool causal, int64_t i, int64_t j, int r) const {
    const int64_t nk = std::min<int64_t>(kTile, t - j * kTile);
    return int(causal ? std::clamp<int64_t>((i - j) * kTile + r + 1, 0, nk) : nk);
  }
};

// Whether the tile products of a dtype run in bf16 pairs: bf16 tensors where the CPU has
// them. Then the operands that many tiles share are packed once (into scratch) instead of
// once a product.
constexpr bool in_pairs(DType dtype) {
#ifdef __AVX512BF16__
  return dtype == DType::BF16;
#else
  (void)dtype;
  return false;
#endif
}

template <typename T>
constexpr bool pairs_for() {
  return std::is_same_v<T, cpu::bf16_t> && in_pairs(DType::BF16);
}

// The tile product for T: bf16 pairs where in_pairs, else f32.
using GemmFn = void (*)(int, int, int, Operand, bool, Operand, float*, int, bool, Tri, int);
template <typename T>
GemmFn product_for() {
  if constexpr (pairs_for<T>()) return gemm16;
  return gemm;
}

// Packed words from a carved float region (the scratch is one f32 tensor); `at` offsets a
// packed operand that may be absent.
uint32_t* words(float* p) { return reinterpret_cast<uint32_t*>(p); }
const uint32_t* at(const uint32_t* p, int64_t offset) { return p ? p + offset : nullptr; }

// Packed rows: the first key that query `first + r` of row b sees (its document's start), for
// the m queries of a tile, and the least of them; lo[m..kTile) are 0. Without positions
// every query starts at key 0.
int doc_starts(const int64_t* positions, const Dims& z, int64_t b, int64_t first, int m, int* lo) {
  int least = 0;
  if (positions) {
    least = int(z.t);
    for (int r = 0; r < m; ++r) {
      lo[r] = int(first + r - positions[b * z.t + first + r]);
      least = std::min(least, lo[r]);
    }
  }
  std::fill(lo + (positions ? m : 0), lo + kTile, 0);
  return least;
}

// Floats one thread's tiles take (the layouts are spelled out where they are carved); a
// packed pair of bf16 takes one float's room.
int64_t fwd_scratch_floats(const Dims& z, bool in_place, bool pairs) {
  const int64_t kv_len = in_place ? 0 : z.tp * z.dp;
  const int64_t packed = pairs ? z.tp * z.dp + z.dp / 2 * kTile : 0;
  return 2 * kv_len + 2 * kTile * z.dp + kTile * kTile + 3 * kTile + packed;
}
int64_t bwd_scratch_floats(const Dims& z, bool in_place, bool pairs) {
  const int64_t plane = z.tp * z.dp, copies = in_place ? 0 : plane;
  const int64_t packed = pairs ? 7 * plane / 2 : 0;
  return 2 * plane + 6 * copies + 2 * z.tp + 2 * kTile * kTile + packed;
}

// The forward works on S^T (keys x queries) = K Q^T, so the online softmax runs down columns:
// each query's max, sum and rescale factor sit in vector lanes, with no horizontal
// reductions, and K is used as stored (only the small query tile is transposed).
template <typename T>
void attention_fwd(const T* q, const T* k, const T* v, const AttentionArgs& args, T* out,
                   float* lse) {
  const Dims z(args);
  const GemmFn mm = product_for<T>();
  // The f32 product takes the scale folded into q; bf16 pairs would round q * scale again,
  // so there the scores are scaled after the product.
  const bool pairs = pairs_for<T>(), scale_after = pairs;
  const int dp = int(z.dp);
  const int64_t ldq = z.h * z.d, tasks = z.b * z.h * z.tiles;
  // f32 keys and values with a 16-multiple head_dim are read in place; others are converted
  // (and zero padded) once per (batch, kv head).
  const bool in_place = std::is_same_v<T, float> && z.d == z.dp;
  const int ldk = in_place ? int(z.hkv * z.d) : dp;
  const int64_t* positions = args.positions.defined() ? args.positions.data<int64_t>() : nullptr;
  const Scratch ws(fwd_scratch_floats(z, in_place, pairs));
#pragma omp parallel num_threads(ws.threads)
  {
    const int64_t kv_len = in_place ? 0 : z.tp * z.dp;
    alignas(64) int lo[kTile];       // first key of each query's document
    float* kk = ws.of_this_thread();
    float* vv = kk + kv_len;
    float* qt = vv + kv_len;         // scaled query tile, transposed (dp x 64)
    float* o = qt + kTile * z.dp;    // unnormalised output tile (64 x dp)
    float* st = o + kTile * z.dp;    // scores, then probabilities, keys x queries (64 x 64)
    float* mx = st + kTile * kTile;  // running max, sum and last rescale factor per query
    float* sum = mx + kTile;
    float* alpha = sum + kTile;
    // bf16 pairs: K's rows [tp][dp/2], V's rows paired along keys [tp/2][dp], the query tile
    // paired along head_dim [dp/2][64]
    uint32_t* kpk = pairs ? words(alpha + kTile) : nullptr;
    uint32_t* vpk = pairs ? kpk + z.tp * z.dp / 2 : nullptr;
    uint32_t* qpk = pairs ? vpk + z.tp * z.dp / 2 : nullptr;
    int64_t cached = -1;             // which (batch, kv head) kk and vv hold
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t i = z.tiles - 1 - task % z.tiles;  // long causal rows first: better balance
      const int64_t bh = task / z.tiles, b = bh / z.h, h = bh % z.h;
      const int64_t koff = (b * z.t * z.hkv + h / z.group) * z.d;
      const float *kg = kk, *vg = vv;
      if (in_place) {
        kg = as_f32(k) + koff, vg = as_f32(v) + koff;
      } else {
        if (b * z.hkv + h / z.group != cached) {
          load_rows(k + koff, z.hkv * z.d, z.t, z.d, 1.0f, kk, z.dp);
          load_rows(v + koff, z.hkv * z.d, z.t, z.d, 1.0f, vv, z.dp);
          if (pairs) {
            pack_rows(kk, dp, int(z.t), int(z.d), kpk, dp);
            pack_pairs(vv, dp, int(z.t), dp, vpk);
          }
          cached = b * z.hkv + h / z.group;
        }
      }
      const int64_t t0 = i * kTile;
      const int m = int(std::min<int64_t>(kTile, z.t - t0)), nq = int(round_up(m, 16));
      const int64_t qoff = ((b * z.t + t0) * z.h + h) * z.d;
      load_rows(q + qoff, ldq, m, z.d, scale_after ? 1.0f : args.scale, o, z.dp);  // o stages the rows
      transpose_rows(o, dp, m, z.dp, qt, kTile);
      if (pairs) pack_pairs(qt, kTile, int(z.d), nq, qpk);
      std::fill(o, o + m * dp, 0.0f);
      std::fill(mx, mx + kTile, kNegInf);
      std::fill(sum, sum + kTile, 0.0f);
      const int least = doc_starts(positions, z, b, t0, m, lo);
      const int64_t j_end = args.causal ? i + 1 : z.tiles;
      for (int64_t j = least / kTile; j < j_end; ++j) {
        const int64_t j0 = j * kTile;
        const int nk = int(std::min<int64_t>(kTile, z.t - j0));
        const int diag = args.causal ? int(t0 - j0) : kTile;  // kTile: every key visible
        mm(nk, nq, int(z.d), {kg + j0 * ldk, ldk, at(kpk, j0 * dp / 2), dp / 2}, false,
           {qt, kTile, qpk, nq}, st, kTile, true, args.causal ? Tri::start_n : Tri::none, diag);
        if (scale_after)
          for (int c = 0; c < nk; ++c)
#pragma omp simd
            for (int r = 0; r < nq; ++r) st[c * kTile + r] *= args.scale;
        softmax_columns(st, nk, nq, diag, positions ? lo : nullptr, int(j0), mx, sum, alpha);
        for (int r = 0; r < m; ++r)
          for (int c = 0; c < dp; ++c) o[r * dp + c] *= alpha[r];
        mm(m, dp, nk, {st, kTile}, true, {vg + j0 * ldk, ldk, at(vpk, j0 / 2 * dp), dp}, o, dp, false,
           args.causal ? Tri::limit_k : Tri::none, diag);
      }
      for (int r = 0; r < m; ++r) {
        const float inv = 1.0f / sum[r];
        for (int64_t c = 0; c < z.d; ++c) store(out, qoff + r * ldq + c, o[r * dp + c] * inv);
        lse[(b * z.h + h) * z.t + t0 + r] = mx[r] + std::log(sum[r]);
      }
    }
  }
}

// One task per (batch, kv head): it owns dk and dv of that kv head and dq of the heads in its
// group, so nothing is shared between threads and no (seq, seq) matrix exists. f32 tensors
// with a 16-multiple head_dim are read and accumulated in place; others go through f32 copies.
template <typename T>
void attention_bwd(const T* q, const T* k, const T* v, const T* out, const float* lse,
                   const T* dout, const AttentionArgs& args, T* dq, T* dk, T* dv) {
  const Dims z(args);
  const GemmFn mm = product_for<T>();
  const int dp = int(z.dp);
  const int64_t ldq = z.h * z.d, ldk = z.hkv * z.d, plane = z.tp * z.dp;
  const bool in_place = std::is_same_v<T, float> && z.d == z.dp;
  const int ldq_w = in_place ? int(ldq) : dp, ldk_w = in_place ? int(ldk) : dp;  // working lds
  const int64_t* positions = args.positions.defined() ? args.positions.data<int64_t>() : nullptr;
  const bool pairs = pairs_for<T>();
  const Scratch ws(bwd_scratch_floats(z, in_place, pairs));
#pragma omp parallel num_threads(ws.threads)
  {
    alignas(64) int lo[kTile];
    const int64_t copies = in_place ? 0 : plane;
    float* kt = ws.of_this_thread();
    float* vt = kt + plane;       // K^T and V^T in key tiles
    float* kc = vt + plane;       // f32 copies (tp x dp) of K, dK, dV, and of one head's
    float* dkc = kc + copies;     // q, dout and dq
    float* dvc = dkc + copies;
    float* qc = dvc + copies;
    float* doc = qc + copies;
    float* dqc = doc + copies;
    float* di = dqc + copies;     // rowsum(dout * out)
    float* ls = di + z.tp;        // lse of one head
    float* p = ls + z.tp;         // probabilities (64 x 64)
    float* ds = p + kTile * kTile;  // dP, then dS (64 x 64)
    // bf16 pairs, plane / 2 words each: K^T and V^T paired along head_dim in key tiles
    // [tiles][dp/2][64], K paired along keys [tp/2][dp]; one head's q and dout rows
    // [tp][dp/2] and paired along queries [tp/2][dp]
    uint32_t* packed[7] = {};
    for (int n = 0; pairs && n < 7; ++n) packed[n] = words(ds + kTile * kTile) + n * plane / 2;
    // (named pointers, not a structured binding: clang refuses those inside OpenMP regions)
    uint32_t *const ktp = packed[0], *const vtp = packed[1], *const kpr = packed[2], *const qpk = packed[3];
    uint32_t *const dopk = packed[4], *const qpr = packed[5], *const dopr = packed[6];
    const Tri tri_n = args.causal ? Tri::limit_n : Tri::none;
    const Tri tri_k = args.causal ? Tri::limit_k : Tri::none;
    const Tri tri_s = args.causal ? Tri::start_k : Tri::none;
    const int64_t width = in_place ? z.d : dp;  // of a working row, padding included
    auto zero = [&](float* x, int64_t ld) {
      for (int64_t t = 0; t < z.t; ++t) std::fill(x + t * ld, x + t * ld + width, 0.0f);
    };
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < z.b * z.hkv; ++task) {
      const int64_t b = task / z.hkv, kvh = task % z.hkv;
      const int64_t koff = b * z.t * ldk + kvh * z.d;
      const float *kw = kc, *qw = qc, *dow = doc;  // working arrays
      float *dkw = dkc, *dvw = dvc, *dqw = dqc;
      if (in_place) {
        kw = as_f32(k) + koff, dkw = as_f32(dk) + koff, dvw = as_f32(dv) + koff;
        transpose_rows(kw, ldk, z.t, z.dp, kt, z.tp);
        transpose_rows(as_f32(v) + koff, ldk, z.t, z.dp, vt, z.tp);
      } else {
        load_rows(v + koff, ldk, z.t, z.d, 1.0f, kc, z.dp);  // kc stages V's rows
        transpose_rows(kc, dp, z.t, z.dp, vt, z.tp);
        load_rows(k + koff, ldk, z.t, z.d, 1.0f, kc, z.dp);
        transpose_rows(kc, dp, z.t, z.dp, kt, z.tp);
      }
      if (pairs) {
        pack_pairs(kt, kTile, int(z.tiles * z.dp), kTile, ktp);
        pack_pairs(vt, kTile, int(z.tiles * z.dp), kTile, vtp);
        pack_pairs(kc, dp, int(z.t), dp, kpr);
      }
      zero(dkw, ldk_w);
      zero(dvw, ldk_w);
      for (int64_t h = kvh * z.group; h < (kvh + 1) * z.group; ++h) {
        const int64_t qoff = b * z.t * ldq + h * z.d;
        if (in_place) {
          qw = as_f32(q) + qoff, dow = as_f32(dout) + qoff, dqw = as_f32(dq) + qoff;
        } else {
          load_rows(q + qoff, ldq, z.t, z.d, 1.0f, qc, z.dp);
          load_rows(dout + qoff, ldq, z.t, z.d, 1.0f, doc, z.dp);
        }
        if (pairs) {
          pack_rows(qc, dp, int(z.t), dp, qpk, dp);
          pack_rows(doc, dp, int(z.t), dp, dopk, dp);
          pack_pairs(qc, dp, int(z.t), dp, qpr);
          pack_pairs(doc, dp, int(z.t), dp, dopr);
        }
        for (int64_t t = 0; t < z.t; ++t) {
          float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
          for (int64_t c = 0; c < z.d; ++c)
            acc += dow[t * ldq_w + c] * load(out, qoff + t * ldq + c);
          di[t] = acc;
          ls[t] = lse[(b * z.h + h) * z.t + t];
        }
        zero(dqw, ldq_w);
        for (int64_t j = 0; j < z.tiles; ++j) {
          const int64_t j0 = j * kTile;
          const int nk = int(std::min<int64_t>(kTile, z.t - j0)), nkp = int(round_up(nk, 16));
          for (int64_t i = args.causal ? j : 0; i < z.tiles; ++i) {
            const int64_t t0 = i * kTile;
            const int m = int(std::min<int64_t>(kTile, z.t - t0)), diag = int(t0 - j0);
            // every query of the tile starts its document after this key tile: no gradient
            if (doc_starts(positions, z, b, t0, m, lo) >= j0 + nk) continue;
            const float* qi = qw + t0 * ldq_w;
            const float* doi = dow + t0 * ldq_w;
            const Operand ki{kt + j0 * dp, kTile, at(ktp, j0 * dp / 2), kTile};
            const Operand vi{vt + j0 * dp, kTile, at(vtp, j0 * dp / 2), kTile};
            mm(m, nkp, dp, {qi, ldq_w, at(qpk, t0 * dp / 2), dp / 2}, false, ki, p, kTile, true, tri_n, diag);
            mm(m, nkp, dp, {doi, ldq_w, at(dopk, t0 * dp / 2), dp / 2}, false, vi, ds, kTile, true, tri_n, diag);
            for (int r = 0; r < m; ++r) {
              const int n = z.visible(args.causal, i, j, r);
              grad_row(p + r * kTile, ds + r * kTile, std::clamp(lo[r] - int(j0), 0, n), n, args.scale,
                       ls[t0 + r], di[t0 + r]);
            }
            // dV += P^T dO, dK += dS^T q, dQ += dS K.
            float* dvj = dvw + j0 * ldk_w;
            float* dkj = dkw + j0 * ldk_w;
            mm(nk, dp, m, {p, kTile}, true, {doi, ldq_w, at(dopr, t0 / 2 * dp), dp}, dvj, ldk_w, false,
               tri_s, diag);
            mm(nk, dp, m, {ds, kTile}, true, {qi, ldq_w, at(qpr, t0 / 2 * dp), dp}, dkj, ldk_w, false,
               tri_s, diag);
            mm(m, dp, nk, {ds, kTile}, false, {kw + j0 * ldk_w, ldk_w, at(kpr, j0 / 2 * dp), dp},
               dqw + t0 * ldq_w, ldq_w, false, tri_k, diag);
          }
        }
        if (!in_place)
          for (int64_t t = 0; t < z.t; ++t)
            for (int64_t c = 0; c < z.d; ++c) store(dq, qoff + t * ldq + c, dqc[t * dp + c]);
      }
      if (!in_place)
        for (int64_t t = 0; t < z.t; ++t)
          for (int64_t c = 0; c < z.d; ++c) {
            store(dk, koff + t * ldk + c, dkc[t * dp + c]);
            store(dv, koff + t * ldk + c, dvc[t * dp + c]);
          }
    }
  }
}

void check(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionArgs& a,
           const Tensor& lse, std::initializer_list<const Tensor*> like_q) {
  const bool ok = a.kv_heads > 0 && a.heads % a.kv_heads == 0 && q.ndim() == 4 &&
                  q.shape() == Shape{a.batch, a.seq, a.heads, a.head_dim} &&
                  k.shape() == Shape{a.batch, a.seq, a.kv_heads, a.head_dim} &&
                  v.shape() == k.shape() && lse.shape() == Shape{a.batch, a.heads, a.seq} &&
                  lse.dtype() == DType::F32 && is_float(q.dtype()) &&
                  k.dtype() == q.dtype() && v.dtype() == q.dtype();
  if (!ok)
    throw ShapeError("attention got q " + q.desc() + ", k " + k.desc() + ", v " + v.desc() +
                     ", lse " + lse.desc() + " that do not match its arguments");
  for (const Tensor* t : like_q)
    if (t->dtype() != q.dtype() || t->numel() != q.numel())
      throw ShapeError("attention output " + t->desc() + " does not match q " + q.desc());
  if (!a.positions.defined()) return;
  if (!a.causal || a.positions.dtype() != DType::I64 || a.positions.shape() != Shape{a.batch, a.seq})
    throw ShapeError("attention over packed rows wants a causal mask and positions (batch, seq) i64, got " +
                     a.positions.desc());
  const int64_t* pos = a.positions.data<int64_t>();
  for (int64_t i = 0; i < a.batch * a.seq; ++i)  // a document starts at or before its token
    if (pos[i] < 0 || pos[i] > i % a.seq)
      throw ShapeError("attention: position " + std::to_string(pos[i]) + " of token " + std::to_string(i % a.seq) +
                       " in row " + std::to_string(i / a.seq) + " is outside 0.." + std::to_string(i % a.seq));
}

}  // namespace

int64_t attention_scratch_floats(const AttentionArgs& args, DType dtype, bool backward) {
  const Dims z(args);
  const bool in_place = dtype == DType::F32 && z.d == z.dp, pairs = in_pairs(dtype);
  return Scratch::floats_for(backward ? bwd_scratch_floats(z, in_place, pairs)
                                      : fwd_scratch_floats(z, in_place, pairs));
}

void CpuBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v,
                           const AttentionArgs& args, const Tensor& out, const Tensor& lse) {
  check(q, k, v, args, lse, {&out});
  if (q.numel() == 0) return;
  cpu::dispatch_float(q.dtype(), [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    attention_fwd<T>(q.data<T>(), k.data<T>(), v.data<T>(), args, out.data<T>(),
                     lse.data<float>());
  });
}

void CpuBackend::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& out, const Tensor& lse, const Tensor& dout,
                                    const AttentionArgs& args, const Tensor& dq,
                                    const Tensor& dk, const Tensor& dv) {
  check(q, k, v, args, lse, {&out, &dout, &dq});
  if (dk.shape() != k.shape() || dv.shape() != k.shape() || dk.dtype() != q.dtype() ||
      dv.dtype() != q.dtype())
    throw ShapeError("attention_backward got dk " + dk.desc() + ", dv " + dv.desc() +
                     " that do not match k " + k.desc());
  if (q.numel() == 0) return;
  cpu::dispatch_float(q.dtype(), [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    attention_bwd<T>(q.data<T>(), k.data<T>(), v.data<T>(), out.data<T>(), lse.data<float>(),
                     dout.data<T>(), args, dq.data<T>(), dk.data<T>(), dv.data<T>());
  });
}

}  // namespace bb
