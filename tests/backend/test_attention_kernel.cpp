// CPU attention and rope kernels against naive double-precision references: attention as
// softmax(q k^T * scale + causal mask) v with the (seq, seq) matrix materialised, and its
// analytic gradients; rope against the rotation formula and its own inverse. Packed rows
// (positions) against the same reference with each query's keys cut to its document, and
// against each document run alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"

#include <fmt/format.h>

namespace bb {
namespace {

std::vector<float> randn(int64_t n, float sd, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

struct Reference {
  std::vector<double> out, lse, dq, dk, dv;
};

// Materialises each head's (seq, seq) probabilities; indices follow the kernel's layouts.
Reference reference(const std::vector<float>& q, const std::vector<float>& k,
                    const std::vector<float>& v, const std::vector<float>& dout,
                    const AttentionArgs& a) {
  const int64_t B = a.batch, T = a.seq, H = a.heads, Hk = a.kv_heads, D = a.head_dim;
  Reference r;
  r.out.assign(B * T * H * D, 0.0);
  r.dq.assign(B * T * H * D, 0.0);
  r.dk.assign(B * T * Hk * D, 0.0);
  r.dv.assign(B * T * Hk * D, 0.0);
  r.lse.assign(B * H * T, 0.0);
  auto qi = [&](int64_t b, int64_t t, int64_t h) { return ((b * T + t) * H + h) * D; };
  auto ki = [&](int64_t b, int64_t t, int64_t h) { return ((b * T + t) * Hk + h) * D; };
  std::vector<double> p(T * T), dp(T * T);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / (H / Hk);
      for (int64_t t = 0; t < T; ++t) {
        const int64_t n = a.causal ? t + 1 : T;
        const int64_t lo = a.positions.defined() ? t - a.positions.data<int64_t>()[b * T + t] : 0;
        double mx = -1e300;
        for (int64_t s = lo; s < n; ++s) {
          double acc = 0;
          for (int64_t d = 0; d < D; ++d) acc += double(q[qi(b, t, h) + d]) * k[ki(b, s, g) + d];
          p[t * T + s] = acc * a.scale;
          mx = std::max(mx, p[t * T + s]);
        }
        double sum = 0;
        for (int64_t s = lo; s < n; ++s) sum += std::exp(p[t * T + s] - mx);
        r.lse[(b * H + h) * T + t] = mx + std::log(sum);
        for (int64_t s = 0; s < T; ++s)
          p[t * T + s] = s >= lo && s < n ? std::exp(p[t * T + s] - mx) / sum : 0.0;
        for (int64_t s = 0; s < n; ++s)
          for (int64_t d = 0; d < D; ++d)
            r.out[qi(b, t, h) + d] += p[t * T + s] * v[ki(b, s, g) + d];
      }
      // dP = dO V^T; dS = P (dP - rowsum(P dP)); dq = scale dS K; dk = scale dS^T Q; dv = P^T dO.
      for (int64_t t = 0; t < T; ++t) {
        double row = 0;
        for (int64_t s = 0; s < T; ++s) {
          double acc = 0;
          for (int64_t d = 0; d < D; ++d) acc += double(dout[qi(b, t, h) + d]) * v[ki(b, s, g) + d];
          dp[t * T + s] = acc;
          row += p[t * T + s] * acc;
        }
        for (int64_t s = 0; s < T; ++s) {
          const double ds = p[t * T + s] * (dp[t * T + s] - row) * a.scale;
          for (int64_t d = 0; d < D; ++d) {
            r.dq[qi(b, t, h) + d] += ds * k[ki(b, s, g) + d];
            r.dk[ki(b, s, g) + d] += ds * q[qi(b, t, h) + d];
            r.dv[ki(b, s, g) + d] += p[t * T + s] * dout[qi(b, t, h) + d];
          }
        }
      }
    }
  return r;
}

// Largest error relative to the reference's largest magnitude, floored at 1 (the inputs'
// scale): with seq 1 the dq and dk are exact zeros reached by cancellation.
double rel_err(const std::vector<float>& got, const std::vector<double>& want) {
  double err = 0, scale = 1.0;
  for (size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, std::abs(double(got[i]) - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return err / scale;
}

void check_attention(DType dtype, int64_t heads, int64_t kv_heads, bool causal, int64_t seq,
                     int64_t head_dim, const Tensor& positions = {}) {
  SCOPED_TRACE(std::string(dtype_name(dtype)) + " heads " + std::to_string(heads) + "/" +
               std::to_string(kv_heads) + (causal ? " causal" : " full") + " seq " +
               std::to_string(seq) + " head_dim " + std::to_string(head_dim) +
               (positions.defined() ? " packed" : ""));
  AttentionArgs a;
  a.batch = 2, a.heads = heads, a.kv_heads = kv_heads, a.seq = seq, a.head_dim = head_dim;
  a.causal = causal;
  a.positions = positions;
  a.scale = 1.0f / std::sqrt(float(head_dim));
  const Shape qs{a.batch, seq, heads, head_dim}, ks{a.batch, seq, kv_heads, head_dim};
  // Round trip through the dtype so the reference sees exactly the kernel's inputs.
  Tensor q = Tensor::from_floats(qs, randn(qs.numel(), 2.0f, 1), dtype);
  Tensor k = Tensor::from_floats(ks, randn(ks.numel(), 1.0f, 2), dtype);
  Tensor v = Tensor::from_floats(ks, randn(ks.numel(), 1.0f, 3), dtype);
  Tensor dout = Tensor::from_floats(qs, randn(qs.numel(), 1.0f, 4), dtype);
  const Reference ref = reference(q.to_floats(), k.to_floats(), v.to_floats(), dout.to_floats(), a);

  CpuBackend be;
  Tensor out = Tensor::full(qs, 7.0f, dtype), lse = Tensor::full(Shape{a.batch, heads, seq}, 7.0f);
  be.attention(q, k, v, a, out, lse);
  // Gradients start as garbage: the kernel must write them, not accumulate.
  Tensor dq = Tensor::full(qs, 7.0f, dtype), dk = Tensor::full(ks, 7.0f, dtype),
         dv = Tensor::full(ks, 7.0f, dtype);
  be.attention_backward(q, k, v, out, lse, dout, a, dq, dk, dv);

  const double tol = dtype == DType::F32 ? 1e-5 : 2e-2;  // bf16 keeps 8 mantissa bits
  EXPECT_LT(rel_err(out.to_floats(), ref.out), tol);
  EXPECT_LT(rel_err(lse.to_floats(), ref.lse), 1e-5);
  EXPECT_LT(rel_err(dq.to_floats(), ref.dq), tol);
  EXPECT_LT(rel_err(dk.to_floats(), ref.dk), tol);
  EXPECT_LT(rel_err(dv.to_floats(), ref.dv), tol);
}

TEST(AttentionKernel, MatchesReferenceF32) {
  for (bool causal : {true, false})
    for (int64_t kv : {4, 2, 1})
      for (int64_t seq : {1, 7, 67, 130})
        for (int64_t d : {16, 64}) check_attention(DType::F32, 4, kv, causal, seq, d);
}

TEST(AttentionKernel, MatchesReferenceBF16) {
  for (bool causal : {true, false})
    for (int64_t kv : {2, 1})
      for (int64_t seq : {1, 7, 67, 130})
        for (int64_t d : {16, 64}) check_attention(DType::BF16, 4, kv, causal, seq, d);
}

TEST(AttentionKernel, HeadDimNotMultipleOf16) {
  check_attention(DType::F32, 4, 2, true, 67, 40);
  check_attention(DType::F32, 2, 1, false, 33, 8);
}

TEST(AttentionKernel, ManyTilesCausal) { check_attention(DType::F32, 2, 1, true, 300, 64); }

// bf16 tiles multiply in bf16 pairs: odd and padded head sizes (odd k in a product), a head
// of 128 (products wider than a tile) and many causal tiles.
TEST(AttentionKernel, BF16HeadSizesAndManyTiles) {
  check_attention(DType::BF16, 4, 2, true, 67, 40);
  check_attention(DType::BF16, 2, 1, false, 33, 8);
  check_attention(DType::BF16, 2, 2, true, 77, 24);
  check_attention(DType::BF16, 2, 1, true, 130, 128);
  check_attention(DType::BF16, 2, 1, true, 300, 64);
}

// Two rows of documents end to end (each row's lengths sum to kPackedSeq): a document of one
// token, documents across tile boundaries, one longer than a tile, one a whole tile.
constexpr int64_t kPackedSeq = 200;
const std::vector<std::vector<int64_t>> kDocs = {{1, 70, 5, 64, 60}, {130, 3, 67}};

// Each token's position in its document, rows (2, kPackedSeq).
Tensor packed_positions() {
  std::vector<int64_t> pos;
  for (const auto& row : kDocs)
    for (int64_t len : row)
      for (int64_t i = 0; i < len; ++i) pos.push_back(i);
  return Tensor::from_ints(Shape{2, kPackedSeq}, pos);
}

TEST(AttentionKernel, PackedRowsMatchTheReferenceCutToEachDocument) {
  for (DType dtype : {DType::F32, DType::BF16})
    for (int64_t kv : {4, 2})
      for (int64_t d : {64, 24}) check_attention(dtype, 4, kv, true, kPackedSeq, d, packed_positions());
}

struct Outputs {
  Tensor out, lse, dq, dk, dv;
};

Outputs run(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& dout, const Tensor& positions) {
  AttentionArgs a;
  a.batch = q.dim(0), a.seq = q.dim(1), a.heads = q.dim(2), a.kv_heads = k.dim(2), a.head_dim = q.dim(3);
  a.scale = 1.0f / std::sqrt(float(a.head_dim));
  a.positions = positions;
  CpuBackend be;
  Outputs r{Tensor::empty(q.shape(), q.dtype()), Tensor::empty(Shape{a.batch, a.heads, a.seq}),
        Tensor::empty(q.shape(), q.dtype()), Tensor::empty(k.shape(), k.dtype()), Tensor::empty(k.shape(), k.dtype())};
  be.attention(q, k, v, a, r.out, r.lse);
  be.attention_backward(q, k, v, r.out, r.lse, dout, a, r.dq, r.dk, r.dv);
  return r;
}

// A tensor's values with its rows (dim 0) and tokens (dim 1) read once, so that each token's
// values can be compared without converting the whole tensor again.
struct Tokens {
  std::vector<float> all;
  int64_t seq = 0, width = 0;
  explicit Tokens(const Tensor& x) : all(x.to_floats()), seq(x.dim(1)), width(x.numel() / (x.dim(0) * x.dim(1))) {}
  // Token t of row b: the same values as in `other`.
  bool same(const Tokens& other, int64_t b, int64_t t) const {
    const auto first = all.begin() + (b * seq + t) * width;
    return std::equal(first, first + width, other.all.begin() + (b * seq + t) * width);
  }
};

// Changing one document's queries, keys and values (and its output gradient) leaves every
// other token's output and gradients bit for bit as they were: a single key of another
// document seen by one query would change them.
TEST(AttentionKernel, PackedRowsNeverAttendAcrossADocument) {
  for (DType dtype : {DType::F32, DType::BF16})
    for (int64_t d : {64, 24}) {
      const Shape qs{2, kPackedSeq, 4, d}, ks{2, kPackedSeq, 2, d};
      std::vector<float> q = randn(qs.numel(), 2.0f, 11), k = randn(ks.numel(), 1.0f, 12),
                         v = randn(ks.numel(), 1.0f, 13), dout = randn(qs.numel(), 1.0f, 14);
      auto tensors = [&](std::vector<float> qv, std::vector<float> kv, std::vector<float> vv, std::vector<float> dv) {
        return run(Tensor::from_floats(qs, qv, dtype), Tensor::from_floats(ks, kv, dtype),
                   Tensor::from_floats(ks, vv, dtype), Tensor::from_floats(qs, dv, dtype), packed_positions());
      };
      const Outputs base = tensors(q, k, v, dout);
      for (int64_t b = 0; b < 2; ++b) {
        int64_t start = 0;
        for (int64_t len : kDocs[size_t(b)]) {
          SCOPED_TRACE(fmt::format("{} head_dim {} row {} document at {} of {}", dtype_name(dtype), d, b, start, len));
          std::vector<float> q2 = q, k2 = k, v2 = v, d2 = dout;
          for (int64_t t = start; t < start + len; ++t) {
            for (int64_t i = 0; i < 4 * d; ++i) q2[(b * kPackedSeq + t) * 4 * d + i] += 0.5f, d2[(b * kPackedSeq + t) * 4 * d + i] -= 0.5f;
            for (int64_t i = 0; i < 2 * d; ++i) k2[(b * kPackedSeq + t) * 2 * d + i] *= -1.0f, v2[(b * kPackedSeq + t) * 2 * d + i] += 1.0f;
          }
          const Outputs changed = tensors(q2, k2, v2, d2);
          bool inside_changed = false;
          for (auto field : {&Outputs::out, &Outputs::dq, &Outputs::dk, &Outputs::dv}) {
            const Tokens was(base.*field), now(changed.*field);
            for (int64_t bb = 0; bb < 2; ++bb)
              for (int64_t t = 0; t < kPackedSeq; ++t) {
                const bool same = was.same(now, bb, t);
                if (bb == b && t >= start && t < start + len) inside_changed |= !same;
                else ASSERT_TRUE(same) << "row " << bb << " token " << t << " depends on the changed document";
              }
          }
          EXPECT_TRUE(inside_changed);
          start += len;
        }
      }
    }
}

// The packed rows give each document what it gets alone in a row of its own (f32, 1e-5 of
// the largest magnitude, floored at 1).
TEST(AttentionKernel, PackedRowsGiveEachDocumentWhatItGetsAlone) {
  for (int64_t d : {64, 24}) {
    const Shape qs{2, kPackedSeq, 4, d}, ks{2, kPackedSeq, 2, d};
    const Tensor q = Tensor::from_floats(qs, randn(qs.numel(), 2.0f, 21));
    const Tensor k = Tensor::from_floats(ks, randn(ks.numel(), 1.0f, 22));
    const Tensor v = Tensor::from_floats(ks, randn(ks.numel(), 1.0f, 23));
    const Tensor dout = Tensor::from_floats(qs, randn(qs.numel(), 1.0f, 24));
    const Outputs packed = run(q, k, v, dout, packed_positions());
    for (int64_t b = 0; b < 2; ++b) {
      int64_t start = 0;
      for (int64_t len : kDocs[size_t(b)]) {
        SCOPED_TRACE(fmt::format("head_dim {} row {} document at {} of {}", d, b, start, len));
        auto part = [&](const Tensor& x) {  // the document's tokens as a row of their own
          const Tokens all(x);
          const auto first = all.all.begin() + (b * all.seq + start) * all.width;
          return Tensor::from_floats(Shape{1, len, x.dim(2), x.dim(3)},
                                     std::vector<float>(first, first + len * all.width));
        };
        const Outputs alone = run(part(q), part(k), part(v), part(dout), Tensor());
        for (auto field : {&Outputs::out, &Outputs::dq, &Outputs::dk, &Outputs::dv}) {
          const std::vector<float> want = (alone.*field).to_floats();
          EXPECT_LT(rel_err(part(packed.*field).to_floats(), std::vector<double>(want.begin(), want.end())), 1e-5);
        }
        const std::vector<float> lse_all = packed.lse.to_floats(), lse_alone = alone.lse.to_floats();
        for (int64_t h = 0; h < 4; ++h)
          for (int64_t t = 0; t < len; ++t)
            EXPECT_NEAR(lse_all[(b * 4 + h) * kPackedSeq + start + t], lse_alone[h * len + t], 1e-5);
        start += len;
      }
    }
  }
}

TEST(AttentionKernel, PackedRowsRefuseImpossiblePositions) {
  CpuBackend be;
  AttentionArgs a;
  a.batch = 1, a.heads = 1, a.kv_heads = 1, a.seq = 4, a.head_dim = 8;
  Tensor q = Tensor::zeros(Shape{1, 4, 1, 8}), out = Tensor::zeros(Shape{1, 4, 1, 8}), lse = Tensor::zeros(Shape{1, 1, 4});
  a.positions = Tensor::from_ints(Shape{1, 4}, {0, 1, 3, 0});  // token 2 cannot be 3 into its document
  EXPECT_THROW(be.attention(q, q, q, a, out, lse), ShapeError);
  a.positions = Tensor::from_ints(Shape{1, 4}, {0, 1, -1, 0});
  EXPECT_THROW(be.attention(q, q, q, a, out, lse), ShapeError);
  a.positions = Tensor::from_ints(Shape{1, 3}, {0, 1, 2});
  EXPECT_THROW(be.attention(q, q, q, a, out, lse), ShapeError);
  a.positions = Tensor::from_ints(Shape{1, 4}, {0, 1, 0, 1});
  a.causal = false;  // a document mask is a causal one
  EXPECT_THROW(be.attention(q, q, q, a, out, lse), ShapeError);
  a.causal = true;
  EXPECT_NO_THROW(be.attention(q, q, q, a, out, lse));
}

TEST(AttentionKernel, RejectsMismatchedShapes) {
  CpuBackend be;
  AttentionArgs a;
  a.batch = 1, a.heads = 3, a.kv_heads = 2, a.seq = 4, a.head_dim = 8;
  Tensor q = Tensor::zeros(Shape{1, 4, 3, 8}), k = Tensor::zeros(Shape{1, 4, 2, 8});
  Tensor out = Tensor::zeros(Shape{1, 4, 3, 8}), lse = Tensor::zeros(Shape{1, 3, 4});
  EXPECT_THROW(be.attention(q, k, k, a, out, lse), ShapeError);  // 3 heads over 2 kv heads
}

// y from the rotate_half formula, in double.
std::vector<double> rope_reference(const std::vector<float>& x, const Shape& s, float theta) {
  const int64_t T = s[1], H = s[2], D = s[3], half = D / 2;
  std::vector<double> y(x.size());
  for (int64_t row = 0; row < s[0] * T * H; ++row) {
    const int64_t t = (row / H) % T;
    for (int64_t i = 0; i < half; ++i) {
      const double ang = double(t) * std::pow(double(theta), -2.0 * double(i) / double(D));
      const double lo = x[row * D + i], hi = x[row * D + i + half];
      y[row * D + i] = lo * std::cos(ang) - hi * std::sin(ang);
      y[row * D + i + half] = hi * std::cos(ang) + lo * std::sin(ang);
    }
  }
  return y;
}

TEST(RopeKernel, MatchesFormulaAndInverts) {
  CpuBackend be;
  for (DType dtype : {DType::F32, DType::BF16})
    for (int64_t d : {16, 64}) {
      const Shape s{2, 37, 3, d};
      Tensor x = Tensor::from_floats(s, randn(s.numel(), 1.0f, 5), dtype);
      Tensor y = Tensor::empty(s, dtype), back = Tensor::empty(s, dtype);
      be.rope(x, 10000.0f, false, Tensor(), y);
      be.rope(y, 10000.0f, true, Tensor(), back);
      const double tol = dtype == DType::F32 ? 1e-5 : 1e-2;
      EXPECT_LT(rel_err(y.to_floats(), rope_reference(x.to_floats(), s, 10000.0f)), tol);
      const std::vector<float> xv = x.to_floats();
      EXPECT_LT(rel_err(back.to_floats(), std::vector<double>(xv.begin(), xv.end())), tol);
    }
}

TEST(RopeKernel, InPlace) {
  CpuBackend be;
  const Shape s{1, 9, 2, 8};
  Tensor x = Tensor::from_floats(s, randn(s.numel(), 1.0f, 6));
  const std::vector<double> want = rope_reference(x.to_floats(), s, 500.0f);
  be.rope(x, 500.0f, false, Tensor(), x);
  EXPECT_LT(rel_err(x.to_floats(), want), 1e-5);
}

// Packed rows turn each token by its position in its document: exactly what the document's
// tokens get at positions 0.. in a row of their own.
TEST(RopeKernel, PackedPositionsRestartEachDocument) {
  CpuBackend be;
  const Shape s{1, 12, 2, 8};
  Tensor x = Tensor::from_floats(s, randn(s.numel(), 1.0f, 7));
  Tensor y = Tensor::empty(s);
  be.rope(x, 10000.0f, false, Tensor::from_ints(Shape{1, 12}, {0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3}), y);
  const std::vector<float> xv = x.to_floats(), yv = y.to_floats();
  for (auto [start, len] : {std::pair<int64_t, int64_t>{0, 5}, {5, 3}, {8, 4}}) {
    const Shape one{1, len, 2, 8};
    Tensor part = Tensor::from_floats(one, std::vector<float>(xv.begin() + start * 16, xv.begin() + (start + len) * 16));
    Tensor alone = Tensor::empty(one);
    be.rope(part, 10000.0f, false, Tensor(), alone);
    EXPECT_EQ(alone.to_floats(), std::vector<float>(yv.begin() + start * 16, yv.begin() + (start + len) * 16));
  }
  EXPECT_THROW(be.rope(x, 10000.0f, false, Tensor::from_ints(Shape{1, 12}, std::vector<int64_t>(12, 12)), y), ShapeError);
}

TEST(RopeKernel, RejectsOddHeadDim) {
  CpuBackend be;
  Tensor x = Tensor::zeros(Shape{1, 2, 1, 5});
  EXPECT_THROW(be.rope(x, 10000.0f, false, Tensor(), x), ShapeError);
}

}  // namespace
}  // namespace bb
