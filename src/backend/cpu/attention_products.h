// The tile products of the CPU attention kernel (attention.cpp): C (+)= A * B on 64-wide
// score tiles in per-thread scratch, by register-blocked micro-kernels: AVX-512 fma in f32,
// and for bf16 tensors AVX512_BF16 pair products with f32 sums on operands packed in pairs
// (scalar versions of the pair layouts elsewhere, so the packing can be checked anywhere).
// A causal diagonal tile trims the work (Tri). Included by attention.cpp alone.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

// The intrinsics for this header, attention_softmax.h and attention.cpp.
#if defined(__AVX512F__) || defined(__AVX2__)
// GCC 12 flags _mm512_undefined_ps() inside its own intrinsic headers as uninitialised.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

#include "backend/cpu/elem.h"

namespace bb::cpu::flash {

constexpr int kTile = 64;  // queries and keys per tile (the scratch tiles are kTile wide)
constexpr int kMr = 6;     // micro-kernel rows: 6 rows x 64 columns = 24 zmm accumulators


inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

#ifdef __AVX512F__
inline __mmask16 tail_mask(int left) {
  return left >= 16 ? __mmask16(0xffff) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
}
#endif

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
inline void gemm(int m, int n, int k, Operand a, bool a_trans, Operand b, float* c, int ldc, bool overwrite,
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
inline void pack_pairs(const float* src, int64_t ld, int rows, int cols, uint32_t* dst) {
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
inline void pack_rows(const float* src, int64_t ld, int rows, int k, uint32_t* dst, int k_pad) {
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
inline uint32_t pair_of(float lo, float hi) { return uint32_t(f32_to_bf16(lo)) | uint32_t(f32_to_bf16(hi)) << 16; }
inline void pack_pairs(const float* src, int64_t ld, int rows, int cols, uint32_t* dst) {
  for (int r = 0; r < rows; r += 2) {
    const float* lo = src + int64_t(r) * ld;
    const float* hi = r + 1 < rows ? lo + ld : nullptr;
    for (int c = 0; c < cols; ++c) dst[int64_t(r / 2) * cols + c] = pair_of(lo[c], hi ? hi[c] : 0.0f);
  }
}
inline void pack_rows(const float* src, int64_t ld, int rows, int k, uint32_t* dst, int k_pad) {
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
inline void gemm16(int m, int n, int k, Operand a, bool a_trans, Operand b, float* c, int ldc, bool overwrite,
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

}  // namespace bb::cpu::flash
