// Memory-efficient causal self-attention (grouped key/value heads) and rotary embedding.
// Attention saves q, k, v, its output and one f32 log-sum-exp per query: O(T) memory, not
// O(T^2); backward recomputes the probabilities tile by tile.
#include <cmath>

#include "ops/ops.h"
#include "ops/record.h"

namespace bb {

namespace {

void check_positions(std::string_view op, const Tensor& positions, const Tensor& x) {
  if (positions.defined() && (positions.dtype() != DType::I64 || positions.shape() != Shape{x.dim(0), x.dim(1)}))
    shape_error(op, fmt::format("wants positions (B, T) i64 for {}, got {}", x.desc(), positions.desc()));
}

}  // namespace

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, const Tensor& positions) {
  OpScope scope("attention");
  constexpr std::string_view op = "attention";
  check_float(op, q, "q");
  check_float(op, k, "k");
  check_float(op, v, "v");
  if (q.ndim() != 4 || k.ndim() != 4 || v.shape() != k.shape())
    shape_error(op, fmt::format("wants q (B, T, H, D), k and v (B, T, Hkv, D); got {}, {}, {}",
                                q.desc(), k.desc(), v.desc()));
  if (k.dim(0) != q.dim(0) || k.dim(1) != q.dim(1) || k.dim(3) != q.dim(3) ||
      q.dim(2) % k.dim(2) != 0)
    shape_error(op, fmt::format("q {} and k {} do not match (heads must be a multiple of kv heads)",
                                q.desc(), k.desc()));
  if (q.dtype() != k.dtype() || q.dtype() != v.dtype())
    shape_error(op, fmt::format("q, k, v differ in dtype: {}, {}, {}", q.desc(), k.desc(), v.desc()));
  AttentionArgs a;
  a.batch = q.dim(0);
  a.seq = q.dim(1);
  a.heads = q.dim(2);
  a.kv_heads = k.dim(2);
  a.head_dim = q.dim(3);
  a.causal = causal;
  a.scale = 1.0f / std::sqrt(static_cast<float>(a.head_dim));
  check_positions(op, positions, q);
  if (positions.defined() && !causal) shape_error(op, "over packed rows (positions) must be causal");
  a.positions = positions;
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  Tensor lse = Tensor::empty(Shape{a.batch, a.heads, a.seq}, DType::F32, q.device());
  kernels(q).attention(q, k, v, a, out, lse);
  if (will_record({q, k, v})) {
    Tensor sq = q.detach(), sk = k.detach(), sv = v.detach(), so = out.detach();
    record("attention", {q, k, v}, {out}, [sq, sk, sv, so, lse, a](const std::vector<Tensor>& g) {
      Tensor dq = Tensor::empty(sq.shape(), sq.dtype(), sq.device());
      Tensor dk = Tensor::empty(sk.shape(), sk.dtype(), sk.device());
      Tensor dv = Tensor::empty(sv.shape(), sv.dtype(), sv.device());
      kernels(sq).attention_backward(sq, sk, sv, so, lse, cast(g[0], sq.dtype()), a, dq, dk, dv);
      return std::vector<Tensor>{dq, dk, dv};
    });
  }
  return out;
}

Tensor decode_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, int64_t length) {
  OpScope scope("decode_attention");
  constexpr std::string_view op = "decode_attention";
  check_float(op, q, "q");
  if (q.ndim() != 4 || q.dim(1) != 1 || k_cache.ndim() != 4 || v_cache.shape() != k_cache.shape() ||
      q.dim(0) != k_cache.dim(0) || q.dim(3) != k_cache.dim(3) || q.dim(2) % k_cache.dim(2) != 0)
    shape_error(op, fmt::format("wants q (B, 1, H, D) and caches (B, capacity, Hkv, D); got {}, {}, {}", q.desc(),
                                k_cache.desc(), v_cache.desc()));
  if (q.dtype() != k_cache.dtype() || q.dtype() != v_cache.dtype())
    shape_error(op, fmt::format("q and the caches differ in dtype: {}, {}, {}", q.desc(), k_cache.desc(), v_cache.desc()));
  if (length < 1 || length > k_cache.dim(1))
    shape_error(op, fmt::format("{} cached positions asked of a cache of {}", length, k_cache.dim(1)));
  if (will_record({q, k_cache, v_cache})) shape_error(op, "has no gradient: it is for generation");
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  kernels(q).decode_attention(q, k_cache, v_cache, length, out);
  return out;
}

Tensor rope(const Tensor& x, float theta, const Tensor& positions) {
  OpScope scope("rope");
  check_float("rope", x, "input");
  if (x.ndim() != 4 || x.dim(3) % 2 != 0)
    shape_error("rope", fmt::format("wants (B, T, H, D) with even D, got {}", x.desc()));
  check_positions("rope", positions, x);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  kernels(x).rope(x, theta, false, positions, y);
  record("rope", {x}, {y}, [theta, positions](const std::vector<Tensor>& g) {
    Tensor dx = Tensor::empty(g[0].shape(), g[0].dtype(), g[0].device());
    kernels(g[0]).rope(g[0], theta, true, positions, dx);  // a rotation's gradient is its inverse
    return std::vector<Tensor>{dx};
  });
  return y;
}

}  // namespace bb
