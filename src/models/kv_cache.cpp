// Decoding pieces written with ops (matmul, softmax, concat): they run once per generated
// token on one query, so no dedicated kernel is needed.
#include "models/kv_cache.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"
#include "ops/ops.h"

namespace bb {

std::pair<Tensor, Tensor> KVCache::append(int64_t layer, const Tensor& k_new, const Tensor& v_new) {
  if (static_cast<int64_t>(k.size()) <= layer) {
    k.resize(layer + 1);
    v.resize(layer + 1);
  }
  k[layer] = k[layer].defined() ? concat({k[layer], k_new}, 1) : k_new;
  v[layer] = v[layer].defined() ? concat({v[layer], v_new}, 1) : v_new;
  return {k[layer], v[layer]};
}

Tensor rope_at(const Tensor& x, float theta, int64_t pos) {
  if (x.ndim() != 4 || x.dim(3) % 2 != 0)
    throw ShapeError(fmt::format("rope_at wants (B, T, H, D) with even D, got {}", x.desc()));
  const int64_t T = x.dim(1), H = x.dim(2), D = x.dim(3), half = D / 2;
  // Tables (T, H, D): cos on both halves; sin negated on the first half, so that
  // y = x * cos + swap_halves(x) * sin is (lo c - hi s, hi c + lo s), as the rope kernel.
  std::vector<float> c(T * H * D), s(T * H * D);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = double(pos + t) * std::pow(double(theta), -2.0 * double(i) / double(D));
      const float cv = float(std::cos(angle)), sv = float(std::sin(angle));
      for (int64_t h = 0; h < H; ++h) {
        const int64_t row = (t * H + h) * D;
        c[row + i] = c[row + i + half] = cv;
        s[row + i] = -sv;
        s[row + i + half] = sv;
      }
    }
  Tensor cos_t = cast(Tensor::from_floats(Shape{T, H, D}, c), x.dtype());
  Tensor sin_t = cast(Tensor::from_floats(Shape{T, H, D}, s), x.dtype());
  std::vector<Tensor> halves = split(x, {half, half}, 3);
  Tensor swapped = concat({halves[1], halves[0]}, 3);
  return add(mul(x, cos_t), mul(swapped, sin_t));
}

Tensor decode_attention(const Tensor& q, const Tensor& k, const Tensor& v) {
  if (q.ndim() != 4 || q.dim(1) != 1 || k.ndim() != 4 || v.shape() != k.shape() ||
      q.dim(0) != k.dim(0) || q.dim(3) != k.dim(3) || q.dim(2) % k.dim(2) != 0)
    throw ShapeError(fmt::format("decode_attention wants q (B, 1, H, D) and k, v (B, Tk, Hkv, D), got {}, {}, {}",
                                 q.desc(), k.desc(), v.desc()));
  const int64_t B = q.dim(0), H = q.dim(2), D = q.dim(3), Hkv = k.dim(2), G = H / Hkv;
  Tensor qg = reshape(q, {B, Hkv, G, D});           // heads of one kv group side by side
  Tensor kt = permute(k, {0, 2, 1, 3});             // (B, Hkv, Tk, D)
  Tensor vt = permute(v, {0, 2, 1, 3});
  Tensor scores = scale(matmul(qg, kt, false, true), 1.0f / std::sqrt(static_cast<float>(D)));  // (B, Hkv, G, Tk)
  Tensor p = cast(softmax(scores), vt.dtype());
  return reshape(matmul(p, vt), {B, 1, H, D});
}

}  // namespace bb
