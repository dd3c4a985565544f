// Memory-efficient (flash-style) attention on the CPU. Forward tiles over keys with an
// online softmax; backward recomputes probabilities from the saved log-sum-exp. All math is
// f32 on 64x64 tiles in per-thread scratch, done by one register-blocked micro-kernel
// (AVX-512 intrinsics, with a portable fallback). Head h reads kv head h / (heads / kv_heads).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>
#ifdef __AVX512F__
// GCC 12 flags _mm512_undefined_ps() inside its own intrinsic headers as uninitialised.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/elem.h"
#include "core/error.h"

namespace bb {
namespace {

using cpu::load;
using cpu::store;

constexpr int kTile = 64;  // queries and keys per tile (the scratch tiles are kTile wide)
constexpr int kMr = 6;     // micro-kernel rows: 6 rows x 64 columns = 24 zmm accumulators
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// A 64-byte aligned block of a per-thread buffer that only grows (so calls after the first
// allocate nothing).
float* scratch(std::vector<float>& buf, size_t n) {
  if (buf.size() < n + 16) buf.resize(n + 16);
  auto p = reinterpret_cast<uintptr_t>(buf.data());
  return reinterpret_cast<float*>((p + 63) & ~uintptr_t(63));
}

// C (MR x 16*NV) (+)= A (MR x k) * B (k x 16*NV) over k in [k0, k1). A is read as
// a[r*lda + k], or a[k*lda + r] when AT (so P^T and dS^T need no transposed copy).
#ifdef __AVX512F__
template <int MR, int NV, bool AT>
void micro(int k0, int k1, const float* __restrict a, int lda, const float* __restrict b,
           int ldb, float* __restrict c, int ldc, bool overwrite) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc[r][v] = overwrite ? _mm512_setzero_ps() : _mm512_loadu_ps(c + r * ldc + 16 * v);
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
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);
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
};

// C (m x n) (+)= A (m x k) * B (k x n); n a multiple of 16, rows of B and C 16-float aligned
// in practice.
void gemm(int m, int n, int k, const float* a, int lda, bool a_trans, const float* b, int ldb,
          float* c, int ldc, bool overwrite, Tri tri, int diag) {
  const MicroFn* const* table = a_trans ? kMicro<true> : kMicro<false>;
  for (int r = 0; r < m; r += kMr) {
    const int mr = std::min(kMr, m - r), r_end = r + mr;
    int n_end = n, k0 = 0, k1 = k;
    if (tri == Tri::limit_n) n_end = std::min<int>(n, round_up(std::max(0, r_end + diag), 16));
    if (tri == Tri::limit_k) k1 = std::clamp(r_end + diag, 0, k);
    if (tri == Tri::start_k) k0 = std::clamp(r - diag, 0, k);
    const float* ar = a_trans ? a + r : a + int64_t(r) * lda;
    for (int col = 0; col < n_end; col += 64) {
      const int nv = std::min(4, (n_end - col) / 16);
      table[mr - 1][nv - 1](k0, k1, ar, lda, b + col, ldb, c + int64_t(r) * ldc + col, ldc,
                            overwrite);
    }
  }
}

// Row operations on one 64-wide score row; columns at or past n are (made) exact zeros.
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
float row_max(const float* s, int n) {
  __m512 mx = _mm512_set1_ps(kNegInf);
  for (int c = 0; c < n; c += 16)
    mx = _mm512_mask_max_ps(mx, tail_mask(n - c), mx, _mm512_loadu_ps(s + c));
  return _mm512_reduce_max_ps(mx);
}
// s[c] = exp(s[c] - sub) for c < n; returns their sum.
float exp_row(float* s, int n, float sub) {
  __m512 sum = _mm512_setzero_ps();
  const __m512 vs = _mm512_set1_ps(sub);
  for (int c = 0; c < kTile; c += 16) {
    const __mmask16 m = tail_mask(n - c);
    const __m512 e = _mm512_maskz_mov_ps(m, exp512(_mm512_sub_ps(_mm512_loadu_ps(s + c), vs)));
    _mm512_storeu_ps(s + c, e);
    sum = _mm512_add_ps(sum, e);
  }
  return _mm512_reduce_add_ps(sum);
}
// ds[c] = p[c] * (ds[c] - di) for c < n.
void ds_row(const float* p, float* ds, int n, float di) {
  const __m512 vd = _mm512_set1_ps(di);
  for (int c = 0; c < kTile; c += 16) {
    const __m512 d = _mm512_mul_ps(_mm512_loadu_ps(p + c), _mm512_sub_ps(_mm512_loadu_ps(ds + c), vd));
    _mm512_storeu_ps(ds + c, _mm512_maskz_mov_ps(tail_mask(n - c), d));
  }
}
#else
float row_max(const float* s, int n) {
  float mx = kNegInf;
  for (int c = 0; c < n; ++c) mx = std::max(mx, s[c]);
  return mx;
}
float exp_row(float* s, int n, float sub) {
  float sum = 0.0f;
  for (int c = 0; c < kTile; ++c) {
    s[c] = c < n ? std::exp(s[c] - sub) : 0.0f;
    sum += s[c];
  }
  return sum;
}
void ds_row(const float* p, float* ds, int n, float di) {
  for (int c = 0; c < kTile; ++c) ds[c] = c < n ? p[c] * (ds[c] - di) : 0.0f;
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
// dst = transpose of src (rows x d, rows ld apart) in key tiles: tile j is a zero-padded
// (dp x 64) block at dst + j*64*dp, so a tile's rows are 256 bytes apart rather than a
// whole sequence (which made them collide in the L1 cache's sets).
template <typename T>
void load_rows_t(const T* src, int64_t ld, int64_t rows, int64_t d, float* dst, int64_t dp,
                 int64_t tp) {
  std::fill(dst, dst + dp * tp, 0.0f);
  for (int64_t t = 0; t < rows; ++t) {
    float* col = dst + (t / kTile) * kTile * dp + t % kTile;
    for (int64_t i = 0; i < d; ++i) col[i * kTile] = load(src, t * ld + i);
  }
}

struct Dims {
  int64_t b, h, hkv, t, d, group, dp, tp, tiles;
  explicit Dims(const AttentionArgs& a)
      : b(a.batch), h(a.heads), hkv(a.kv_heads), t(a.seq), d(a.head_dim), group(a.heads / a.kv_heads),
        dp(round_up(a.head_dim, 16)), tp(round_up(a.seq, kTile)), tiles(tp / kTile) {}
  // Keys of key tile j that query row r of query tile i sees.
  int visible(bool causal, int64_t i, int64_t j, int r) const {
    const int64_t nk = std::min<int64_t>(kTile, t - j * kTile);
    return int(causal ? std::clamp<int64_t>((i - j) * kTile + r + 1, 0, nk) : nk);
  }
};

template <typename T>
void attention_fwd(const T* q, const T* k, const T* v, const AttentionArgs& args, T* out,
                   float* lse) {
  const Dims z(args);
  const int dp = int(z.dp);
  const int64_t ldq = z.h * z.d, ldk = z.hkv * z.d, tasks = z.b * z.h * z.tiles;
#pragma omp parallel
  {
    static thread_local std::vector<float> buf;
    float* kt = scratch(buf, size_t(2 * z.tp * z.dp + 2 * kTile * z.dp + kTile * kTile + 2 * kTile));
    float* vv = kt + z.tp * z.dp;          // V of the kv head, (tp x dp)
    float* qt = vv + z.tp * z.dp;          // scaled query tile (64 x dp)
    float* o = qt + kTile * z.dp;          // unnormalised output tile (64 x dp)
    float* s = o + kTile * z.dp;           // scores, then probabilities (64 x 64)
    float* mx = s + kTile * kTile;         // running row max
    float* sum = mx + kTile;               // running row sum of exp
    int64_t cached = -1;                   // which (batch, kv head) kt and vv hold
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t i = z.tiles - 1 - task % z.tiles;  // long causal tiles first: better balance
      const int64_t bh = task / z.tiles, b = bh / z.h, h = bh % z.h;
      const int64_t g = b * z.hkv + h / z.group;
      if (g != cached) {
        const int64_t off = (b * z.t * z.hkv + h / z.group) * z.d;
        load_rows_t(k + off, ldk, z.t, z.d, kt, z.dp, z.tp);
        load_rows(v + off, ldk, z.t, z.d, 1.0f, vv, z.dp);
        cached = g;
      }
      const int64_t t0 = i * kTile;
      const int m = int(std::min<int64_t>(kTile, z.t - t0));
      const int64_t qoff = ((b * z.t + t0) * z.h + h) * z.d;
      load_rows(q + qoff, ldq, m, z.d, args.scale, qt, z.dp);
      std::fill(o, o + m * dp, 0.0f);
      std::fill(mx, mx + kTile, kNegInf);
      std::fill(sum, sum + kTile, 0.0f);
      const Tri tri_n = args.causal ? Tri::limit_n : Tri::none;
      const Tri tri_k = args.causal ? Tri::limit_k : Tri::none;
      const int64_t j_end = args.causal ? i + 1 : z.tiles;
      for (int64_t j = 0; j < j_end; ++j) {
        const int64_t j0 = j * kTile;
        const int nk = int(std::min<int64_t>(kTile, z.t - j0)), diag = int(t0 - j0);
        gemm(m, int(round_up(nk, 16)), dp, qt, dp, false, kt + j0 * dp, kTile, s, kTile, true, tri_n, diag);
        for (int r = 0; r < m; ++r) {
          float* sr = s + r * kTile;
          const int n = z.visible(args.causal, i, j, r);
          const float m_new = std::max(mx[r], row_max(sr, n));
          const float tile_sum = exp_row(sr, n, m_new);
          if (m_new == kNegInf) continue;  // nothing seen yet (cannot happen: key 0 is visible)
          const float alpha = std::exp(mx[r] - m_new);
          sum[r] = sum[r] * alpha + tile_sum;
          mx[r] = m_new;
          if (alpha != 1.0f)
            for (int c = 0; c < dp; ++c) o[r * dp + c] *= alpha;
        }
        gemm(m, dp, nk, s, kTile, false, vv + j0 * dp, dp, o, dp, false, tri_k, diag);
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
// group, so nothing is shared between threads and no (seq, seq) matrix exists.
template <typename T>
void attention_bwd(const T* q, const T* k, const T* v, const T* out, const float* lse,
                   const T* dout, const AttentionArgs& args, T* dq, T* dk, T* dv) {
  const Dims z(args);
  const int dp = int(z.dp);
  const int64_t ldq = z.h * z.d, ldk = z.hkv * z.d, plane = z.tp * z.dp;
#pragma omp parallel
  {
    static thread_local std::vector<float> buf;
    float* kt = scratch(buf, size_t(9 * plane + 2 * z.tp + 2 * kTile * kTile));
    float* vt = kt + plane;      // V^T in key tiles, like kt
    float* kk = vt + plane;      // K (tp x dp)
    float* dk_acc = kk + plane;  // (tp x dp)
    float* dv_acc = dk_acc + plane;
    float* qs = dv_acc + plane;  // scaled q of one head (tp x dp)
    float* dos = qs + plane;     // dout of one head (tp x dp)
    float* dq_acc = dos + plane;
    float* di = dq_acc + plane;  // rowsum(dout * out)
    float* ls = di + z.tp;       // lse of one head
    float* p = ls + z.tp;        // probabilities (64 x 64)
    float* ds = p + kTile * kTile;  // dP, then dS (64 x 64)
    const Tri tri_n = args.causal ? Tri::limit_n : Tri::none;
    const Tri tri_k = args.causal ? Tri::limit_k : Tri::none;
    const Tri tri_s = args.causal ? Tri::start_k : Tri::none;
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < z.b * z.hkv; ++task) {
      const int64_t b = task / z.hkv, kvh = task % z.hkv;
      const int64_t koff = b * z.t * ldk + kvh * z.d;
      load_rows_t(k + koff, ldk, z.t, z.d, kt, z.dp, z.tp);
      load_rows_t(v + koff, ldk, z.t, z.d, vt, z.dp, z.tp);
      load_rows(k + koff, ldk, z.t, z.d, 1.0f, kk, z.dp);
      std::fill(dk_acc, dk_acc + 2 * plane, 0.0f);
      for (int64_t h = kvh * z.group; h < (kvh + 1) * z.group; ++h) {
        const int64_t qoff = b * z.t * ldq + h * z.d;
        load_rows(q + qoff, ldq, z.t, z.d, args.scale, qs, z.dp);
        load_rows(dout + qoff, ldq, z.t, z.d, 1.0f, dos, z.dp);
        for (int64_t t = 0; t < z.t; ++t) {
          float acc = 0.0f;
          for (int64_t c = 0; c < z.d; ++c)
            acc += load(dout, qoff + t * ldq + c) * load(out, qoff + t * ldq + c);
          di[t] = acc;
          ls[t] = lse[(b * z.h + h) * z.t + t];
        }
        std::fill(dq_acc, dq_acc + plane, 0.0f);
        for (int64_t j = 0; j < z.tiles; ++j) {
          const int64_t j0 = j * kTile;
          const int nk = int(std::min<int64_t>(kTile, z.t - j0)), nkp = int(round_up(nk, 16));
          for (int64_t i = args.causal ? j : 0; i < z.tiles; ++i) {
            const int64_t t0 = i * kTile;
            const int m = int(std::min<int64_t>(kTile, z.t - t0)), diag = int(t0 - j0);
            const float* qi = qs + t0 * dp;
            const float* doi = dos + t0 * dp;
            gemm(m, nkp, dp, qi, dp, false, kt + j0 * dp, kTile, p, kTile, true, tri_n, diag);
            gemm(m, nkp, dp, doi, dp, false, vt + j0 * dp, kTile, ds, kTile, true, tri_n, diag);
            for (int r = 0; r < m; ++r) {
              const int n = z.visible(args.causal, i, j, r);
              exp_row(p + r * kTile, n, ls[t0 + r]);
              ds_row(p + r * kTile, ds + r * kTile, n, di[t0 + r]);
            }
            // dV += P^T dO, dK += dS^T (scale q), dQ += dS K (times scale at the end).
            gemm(nk, dp, m, p, kTile, true, doi, dp, dv_acc + j0 * dp, dp, false, tri_s, diag);
            gemm(nk, dp, m, ds, kTile, true, qi, dp, dk_acc + j0 * dp, dp, false, tri_s, diag);
            gemm(m, dp, nk, ds, kTile, false, kk + j0 * dp, dp, dq_acc + t0 * dp, dp, false,
                 tri_k, diag);
          }
        }
        for (int64_t t = 0; t < z.t; ++t)
          for (int64_t c = 0; c < z.d; ++c)
            store(dq, qoff + t * ldq + c, args.scale * dq_acc[t * dp + c]);
      }
      for (int64_t t = 0; t < z.t; ++t)
        for (int64_t c = 0; c < z.d; ++c) {
          store(dk, koff + t * ldk + c, dk_acc[t * dp + c]);
          store(dv, koff + t * ldk + c, dv_acc[t * dp + c]);
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
}

}  // namespace

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
