// Key/value cache for generation: the keys and values of every position seen so far, per
// layer, so each new token costs one position of work instead of the whole context. Also the
// two pieces decoding needs that training does not: rotary embedding at a position offset and
// attention of one new query against the cache.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace bb {

struct KVCache {
  std::vector<Tensor> k, v;  // per layer, (B, T, Hkv, D); undefined before the first token
  int64_t length() const { return k.empty() || !k[0].defined() ? 0 : k[0].dim(1); }
  // Appends (B, Tn, Hkv, D) keys and values of `layer` and returns the whole cached ones.
  std::pair<Tensor, Tensor> append(int64_t layer, const Tensor& k_new, const Tensor& v_new);
};

// Rotary embedding (rotate_half pairing, as ops::rope) of x (B, T, H, D) whose first position
// is `pos`. Without gradient: for decoding.
Tensor rope_at(const Tensor& x, float theta, int64_t pos);

// Attention of q (B, 1, H, D), the newest position, over all cached k and v (B, Tk, Hkv, D),
// with grouped heads as ops::attention (head h reads kv head h / (H / Hkv)). No mask is needed:
// every cached position precedes the query.
Tensor decode_attention(const Tensor& q, const Tensor& k, const Tensor& v);

}  // namespace bb
