// The key/value cache (written in place, attended by the decode_attention op) and rotary
// embedding at a position offset.
#include "models/kv_cache.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"
#include "ops/ops.h"

namespace bb {

void KVCache::append(int64_t layer, const Tensor& k_new, const Tensor& v_new) {
  if (static_cast<int64_t>(k_.size()) <= layer) {
    k_.resize(layer + 1);
    v_.resize(layer + 1);
    filled_.resize(layer + 1, 0);
  }
  const int64_t B = k_new.dim(0), T = k_new.dim(1), Hkv = k_new.dim(2), D = k_new.dim(3);
  if (filled_[layer] + T > capacity_)
    throw ShapeError(fmt::format("the key/value cache holds {} positions; layer {} asked for {}", capacity_, layer,
                                 filled_[layer] + T));
  if (!k_[layer].defined()) {
    k_[layer] = Tensor::empty(Shape{B, capacity_, Hkv, D}, k_new.dtype(), k_new.device());
    v_[layer] = Tensor::empty(Shape{B, capacity_, Hkv, D}, v_new.dtype(), v_new.device());
  }
  write_slice(k_new, k_[layer], 1, filled_[layer]);
  write_slice(v_new, v_[layer], 1, filled_[layer]);
  filled_[layer] += T;
}

Tensor KVCache::attend(int64_t layer, const Tensor& q) const {
  return decode_attention(q, k_[layer], v_[layer], filled_[layer]);
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

}  // namespace bb
