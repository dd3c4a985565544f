// Memory-efficient (flash-style) attention on the CPU. Forward tiles over keys with an
// online softmax; backward recomputes probabilities from the saved log-sum-exp. All math is
// f32 on 64x64 score tiles in per-thread scratch, multiplied by register-blocked
// micro-kernels (AVX-512 fma, or for bf16 tensors AVX512_BF16 pair products with f32 sums;
// a portable fallback). Head h reads kv head h / (heads / kv_heads); no (seq, seq) matrix
// is ever formed. Packed rows (positions given) narrow each query's keys to its own
// document: the probabilities of earlier documents' keys are exact zeros, and tiles that
// hold only such keys are skipped.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <omp.h>
#if defined(__AVX512F__) || defined(__AVX2__)
// GCC 12 flags _mm512_undefined_ps() inside its own intrinsic headers as uninitialised.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/elem.h"
#include "backend/cpu/vec_math.h"
#include "core/error.h"

namespace bb {
namespace {

using cpu::load;
using cpu::store;

constexpr int kTile = 64;  // queries and keys per tile (the scratch tiles are kTile wide)
constexpr int kMr = 6;     // micro-kernel rows: 6 rows x 64 columns = 24 zmm accumulators
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

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

// C (MR x 16*NV) (+)= A (MR x k) * B (k x 16*NV) over k in [k0, k1). A is read as
// a[r*lda + k], or a[k*lda + r] when AT (so P^T and dS^T need no transposed copy).
#ifdef __AVX512F__
// A micro-kernel's MR x NV accumulators: zeros or C's tile, and back to C.
template <int MR, int NV>
inline void acc_load(__m512 (&acc)[MR][NV], const float* c, int ldc, bool overwrite) {
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc[r][v] = overwrite ? _mm512_setzero_ps() : _mm512_loadu_ps(c + r * ldc + 16 * v);
}
template <int MR, int NV>
inline void acc_store(const __m512 (&acc)[MR][NV], float* c, int ldc) {
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);
}

template <int MR, int NV, bool AT>
void micro(int k0, int k1, const float* __restrict a, int lda, const float* __restrict b,
           int ldb, float* __restrict c, int ldc, bool overwrite) {
  __m512 acc[MR][NV];
  acc_load(acc, c, ldc, overwrite);
  for (int kk = k0; kk < k1; ++kk) {
    const float* bk = b + int64_t(kk) * ldb;
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(bk + 16 * v);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(AT ? a[int64_t(kk) * lda + r] : a[int64_t(r) * lda + kk]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
    }
  }
  acc_store(acc, c, ldc);
}
#elif defined(__AVX2__) && defined(__FMA__)
// AVX2 has 16 registers of 8 floats: the tile is done one 16-column group at a time (6 x 2
// accumulators, two of B, one of A), NV passes over A's few rows, which stay in L1.
template <int MR, int NV, bool AT>
void micro(int k0, int k1, const float* __restrict a, int lda, const float* __restrict b,
           int ldb, float* __restrict c, int ldc, bool overwrite) {
  for (int v = 0; v < NV; ++v) {
    float* cv = c + 16 * v;
    const float* bv = b + 16 * v;
    __m256 acc[MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      acc[r][0] = overwrite ? _mm256_setzero_ps() : _mm256_loadu_ps(cv + r * ldc);
      acc[r][1] = overwrite ? _mm256_setzero_ps() : _mm256_loadu_ps(cv + r * ldc + 8);
    }
    for (int kk = k0; kk < k1; ++kk) {
      const __m256 b0 = _mm256_loadu_ps(bv + int64_t(kk) * ldb), b1 = _mm256_loadu_ps(bv + int64_t(kk) * ldb + 8);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const __m256 av = _mm256_broadcast_ss(AT ? a + int64_t(kk) * lda + r : a + int64_t(r) * lda + kk);
        acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      _mm256_storeu_ps(cv + r * ldc, acc[r][0]);
      _mm256_storeu_ps(cv + r * ldc + 8, acc[r][1]);
    }
  }
}
#else
template <int MR, int NV, bool AT>
void micro(int k0, int k1, const float* __restrict a, int lda, const float* __restrict b,
           int ldb, float* __restrict c, int ldc, bool overwrite) {
  float acc[MR][16 * NV];
  for (int r = 0; r < MR; ++r)
    for (int n = 0; n < 16 * NV; ++n) acc[r][n] = overwrite ? 0.0f : c[r * ldc + n];
  for (int kk = k0; kk < k1; ++kk)
    for (int r = 0; r < MR; ++r) {
      const float av = AT ? a[int64_t(kk) * lda + r] : a[int64_t(r) * lda + kk];
      for (int n = 0; n < 16 * NV; ++n) acc[r][n] += av * b[int64_t(kk) * ldb + n];
    }
  for (int r = 0; r < MR; ++r)
    for (int n = 0; n < 16 * NV; ++n) c[r * ldc + n] = acc[r][n];
}
#endif

using MicroFn = void (*)(int, int, const float*, int, const float*, int, float*, int, bool);

template <bool AT, int MR>
constexpr MicroFn kMicroRow[4] = {micro<MR, 1, AT>, micro<MR, 2, AT>, micro<MR, 3, AT>,
                                  micro<MR, 4, AT>};
template <bool AT>
constexpr const MicroFn* kMicro[kMr] = {kMicroRow<AT, 1>, kMicroRow<AT, 2>, kMicroRow<AT, 3>,
                                        kMicroRow<AT, 4>, kMicroRow<AT, 5>, kMicroRow<AT, 6>};

// How a causal diagonal tile trims the work of a product (diag = first query - first key,
// so query row r sees key column c when c <= r + diag). Entries outside the triangle are
// exact zeros (P, dS) or are masked afterwards (S, dP), so trimming changes no result.
enum class Tri : uint8_t {
  none,
  limit_n,  // C rows are queries, columns keys: skip column blocks past the row block's last key
  limit_k,  // C rows are queries, k runs over keys: stop k at the row block's last key
  start_k,  // C rows are keys, k runs over queries (A transposed): start k at the first query
  start_n,  // C rows are keys, columns queries: skip column blocks before the first query
};

// The rows [r, r + mr) of a product and the columns and k range the triangle leaves them.
struct RowBlock {
  int mr, n_begin, n_end, k0, k1;
  RowBlock(int r, int m, int n, int k, Tri tri, int diag)
      : mr(std::min(kMr, m - r)), n_begin(0), n_end(n), k0(0), k1(k) {
    const int r_end = r + mr;
    if (tri == Tri::limit_n) n_end = std::min<int>(n, round_up(std::max(0, r_end + diag), 16));
    if (tri == Tri::limit_k) k1 = std::clamp(r_end + diag, 0, k);
    if (tri == Tri::start_k) k0 = std::clamp(r - diag, 0, k);
    if (tri == Tri::start_n) n_begin = std::clamp(r - diag, 0, n) / 16 * 16;
  }
};

// An operand of a tile product: f32 values, rows ld apart, and optionally the same values
// already in the bf16 product's pair layout (pk, rows pk_ld words apart), packed once by a
// caller whose many tiles share the operand. The f32 product reads only f32; the bf16 one
// reads pk where given and otherwise packs f32 itself.
struct Operand {
  const float* f;
  int ld;
  const uint32_t* pk = nullptr;
  int pk_ld = 0;
};

// C (m x n) (+)= A (m x k) * B (k x n); n a multiple of 16, rows of B and C 16-float aligned
// in practice.
void gemm(int m, int n, int k, Operand a, bool a_trans, Operand b, float* c, int ldc, bool overwrite,
          Tri tri, int diag) {
  const MicroFn* const* table = a_trans ? kMicro<true> : kMicro<false>;
  for (int r = 0; r < m; r += kMr) {
    const RowBlock rb(r, m, n, k, tri, diag);
    const float* ar = a_trans ? a.f + r : a.f + int64_t(r) * a.ld;
    for (int col = rb.n_begin; col < rb.n_end; col += 64) {
      const int nv = std::min(4, (rb.n_end - col) / 16);
      table[rb.mr - 1][nv - 1](rb.k0, rb.k1, ar, a.ld, b.f + col, b.ld, c + int64_t(r) * ldc + col, ldc,
                               overwrite);
    }
  }
}

#ifdef __AVX512F__
inline __m512 exp512(__m512 x) {
  // Cephes expf: x = n ln2 + f, |f| <= ln2/2, exp(f) by a degree-7 polynomial, times 2^n.
  // Clamping keeps 2^n normal; exp(-87) ~ 1.6e-38 stands in for 0.
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 f = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  f = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), f);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.0000001201e-1f));
  const __m512 y = _mm512_fmadd_ps(p, _mm512_mul_ps(f, f), _mm512_add_ps(f, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(y, n);
}
inline __mmask16 tail_mask(int left) {
  return left >= 16 ? __mmask16(0xffff) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
}
#endif

// The same product for 16-bit attention, in bf16 pairs with f32 sums (vdpbf16ps: 32 products
// an instruction, twice fma's) on operands in pair layout, A as pairs along k ([m][k/2]
// from rows, [k/2][m] from a transposed A) and B as [k/2][n][2], odd k zero padded. K, V, q
// and dout are packed once for all the tiles that read them, P and dS once a product. The
// operands' rounding to bf16 is that of the matmuls of a bf16 model: the probabilities and
// score gradients are rounded as the products read them, the sums stay f32. Without
// AVX512_BF16 the same layouts have scalar versions, so the packing can be checked anywhere,
// but in_pairs leaves them unused there (f32 fma is faster than emulated pairs).
#ifdef __AVX512BF16__
// dst [ceil(rows/2)][cols][2] bf16 from f32 rows (ld apart) of `cols` (a multiple of 16).
void pack_pairs(const float* src, int64_t ld, int rows, int cols, uint32_t* dst) {
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                              23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  for (int r = 0; r < rows; r += 2) {
    const float* lo = src + int64_t(r) * ld;
    const float* hi = r + 1 < rows ? lo + ld : nullptr;
    uint32_t* d = dst + int64_t(r / 2) * cols;
    for (int c = 0; c < cols; c += 16) {
      const __m512 h = hi ? _mm512_loadu_ps(hi + c) : _mm512_setzero_ps();
      const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(h, _mm512_loadu_ps(lo + c));
      _mm512_storeu_si512(d + c, _mm512_permutexvar_epi16(interleave, both));
    }
  }
}

// dst [rows][k_pad / 2] bf16 pairs from f32 rows (ld apart) of k elements, zero padded.
void pack_rows(const float* src, int64_t ld, int rows, int k, uint32_t* dst, int k_pad) {
  for (int r = 0; r < rows; ++r) {
    const float* s = src + int64_t(r) * ld;
    __m256i* d = reinterpret_cast<__m256i*>(dst + int64_t(r) * (k_pad / 2));
    for (int c = 0; c < k_pad; c += 16) {
      const __m512 x = _mm512_maskz_loadu_ps(tail_mask(k - c), s + c);
      _mm256_storeu_si256(d + c / 16, (__m256i)_mm512_cvtneps_pbh(x));
    }
  }
}

// C (MR x 16*NV) (+)= A * B over the pairs [p0, p1): A's pair (r, p) at a[r*ar + p*ap],
// B's pairs of one k pair n words apart.
template <int MR, int NV>
void micro16(int p0, int p1, const uint32_t* __restrict a, int ar, int ap, const uint32_t* __restrict b,
             int n, float* __restrict c, int ldc, bool overwrite) {
  __m512 acc[MR][NV];
  acc_load(acc, c, ldc, overwrite);
  for (int pp = p0; pp < p1; ++pp) {
    const uint32_t* bp = b + int64_t(pp) * n;
    __m512bh bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = (__m512bh)_mm512_loadu_si512(bp + 16 * v);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(int(a[r * ar + pp * ap]));
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], av, bv[v]);
    }
  }
  acc_store(acc, c, ldc);
}

#else
uint32_t pair_of(float lo, float hi) { return uint32_t(f32_to_bf16(lo)) | uint32_t(f32_to_bf16(hi)) << 16; }
void pack_pairs(const float* src, int64_t ld, int rows, int cols, uint32_t* dst) {
  for (int r = 0; r < rows; r += 2) {
    const float* lo = src + int64_t(r) * ld;
    const float* hi = r + 1 < rows ? lo + ld : nullptr;
    for (int c = 0; c < cols; ++c) dst[int64_t(r / 2) * cols + c] = pair_of(lo[c], hi ? hi[c] : 0.0f);
  }
}
void pack_rows(const float* src, int64_t ld, int rows, int k, uint32_t* dst, int k_pad) {
  for (int r = 0; r < rows; ++r) {
    const float* s = src + int64_t(r) * ld;
    for (int c = 0; c < k_pad; c += 2)
      dst[int64_t(r) * (k_pad / 2) + c / 2] = pair_of(c < k ? s[c] : 0.0f, c + 1 < k ? s[c + 1] : 0.0f);
  }
}
template <int MR, int NV>
void micro16(int p0, int p1, const uint32_t* __restrict a, int ar, int ap, const uint32_t* __restrict b,
             int n, float* __restrict c, int ldc, bool overwrite) {
  auto lo = [](uint32_t w) { return bf16_to_f32(uint16_t(w)); };
  auto hi = [](uint32_t w) { return bf16_to_f32(uint16_t(w >> 16)); };
  for (int r = 0; r < MR; ++r)
    for (int col = 0; col < 16 * NV; ++col) {
      float acc = overwrite ? 0.0f : c[r * ldc + col];
      for (int pp = p0; pp < p1; ++pp) {
        const uint32_t x = a[r * ar + pp * ap], y = b[int64_t(pp) * n + col];
        acc += lo(x) * lo(y) + hi(x) * hi(y);
      }
      c[r * ldc + col] = acc;
    }
}
#endif

using Micro16Fn = void (*)(int, int, const uint32_t*, int, int, const uint32_t*, int, float*, int, bool);
template <int MR>
constexpr Micro16Fn kMicro16Row[4] = {micro16<MR, 1>, micro16<MR, 2>, micro16<MR, 3>, micro16<MR, 4>};
constexpr const Micro16Fn* kMicro16[kMr] = {kMicro16Row<1>, kMicro16Row<2>, kMicro16Row<3>,
                                            kMicro16Row<4>, kMicro16Row<5>, kMicro16Row<6>};

// gemm's contract (n a multiple of 16) in bf16 pairs: A's pair (r, p) is at pk[r*pk_ld + p]
// (rows) or, transposed, pk[p*pk_ld + r]; B's (p, column) at pk[p*pk_ld + column]. Trimmed k
// ranges widen to whole pairs: the entries they add are the exact zeros of P or dS.
void gemm16(int m, int n, int k, Operand a, bool a_trans, Operand b, float* c, int ldc, bool overwrite,
            Tri tri, int diag) {
  // Per-thread buffers for operands the caller did not pack, grown to the largest product
  // seen (a head of 128 makes k and n 128); a few KB outside the allocator.
  thread_local std::vector<uint32_t> a_buf, b_buf;
  const int pairs = (k + 1) / 2, m16 = int(round_up(m, 16));
  const int k_row = int(round_up(k, 16));  // a packed row of A: whole 16-element stores
  if (!b.pk) {
    b_buf.resize(std::max<size_t>(b_buf.size(), size_t(pairs) * n));
    pack_pairs(b.f, b.ld, k, n, b_buf.data());
    b.pk = b_buf.data(), b.pk_ld = n;
  }
  if (!a.pk) {
    a_buf.resize(std::max<size_t>(a_buf.size(), size_t(std::max(m16 * pairs, m * k_row / 2))));
    if (a_trans)
      pack_pairs(a.f, a.ld, k, m16, a_buf.data());  // [k/2][m16]
    else
      pack_rows(a.f, a.ld, m, k, a_buf.data(), k_row);
    a.pk = a_buf.data(), a.pk_ld = a_trans ? m16 : k_row / 2;
  }
  const int ar = a_trans ? 1 : a.pk_ld, app = a_trans ? a.pk_ld : 1;  // A's strides in words
  for (int r = 0; r < m; r += kMr) {
    const RowBlock rb(r, m, n, k, tri, diag);
    const int p0 = rb.k0 / 2, p1 = std::min(pairs, (rb.k1 + 1) / 2);
    for (int col = rb.n_begin; col < rb.n_end; col += 64) {
      const int nv = std::min(4, (rb.n_end - col) / 16);
      kMicro16[rb.mr - 1][nv - 1](p0, p1, a.pk + r * ar, ar, app, b.pk + col, b.pk_ld,
                                  c + int64_t(r) * ldc + col, ldc, overwrite);
    }
  }
}

// One backward row, zero outside the visible keys [lo, n) (up to kTile): p = exp(scale * s -
// lse) are the probabilities, and ds = scale * p * (dp - di) the scores' gradient, the scale
// of q k^T folded in. On entry p holds q.k and ds holds dout.v.
void grad_row(float* p, float* ds, int lo, int n, float scale, float lse, float di) {
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
void softmax_columns(float* st, int nk, int nq, int diag, const int* lo, int j0, float* mx, float* sum,
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
void softmax_columns(float* st, int nk, int nq, int diag, const int* lo, int j0, float* mx, float* sum,
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
