// Key/value cache for generation: the keys and values of every position seen so far, per
// layer, so each new token costs one position of work instead of the whole context. Also
// rotary embedding at a position offset, which decoding needs and training does not.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace bb {

// Each layer's keys and values live in one tensor (B, capacity, Hkv, D), allocated at the
// layer's first append: a new token is written in place, and decoding reads the cache where
// it lies, so no token copies or permutes what came before it.
class KVCache {
 public:
  explicit KVCache(int64_t capacity) : capacity_(capacity) {}
  int64_t capacity() const { return capacity_; }
  int64_t length() const { return filled_.empty() ? 0 : filled_[0]; }  // positions of layer 0
  // Writes (B, Tn, Hkv, D) keys and values of `layer` after the ones already there.
  void append(int64_t layer, const Tensor& k_new, const Tensor& v_new);
  // Attention of q (B, 1, H, D), the newest position, over every cached position of `layer`
  // (with grouped heads: head h reads kv head h / (H / Hkv)).
  Tensor attend(int64_t layer, const Tensor& q) const;

 private:
  int64_t capacity_;
  std::vector<Tensor> k_, v_;
  std::vector<int64_t> filled_;
};

// Rotary embedding (rotate_half pairing, as ops::rope) of x (B, T, H, D) whose first position
// is `pos`. Without gradient: for decoding.
Tensor rope_at(const Tensor& x, float theta, int64_t pos);

}  // namespace bb
