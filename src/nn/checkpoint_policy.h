// Which blocks of a model are checkpointed: none, every block, every N-th block, or
// selective (no block is replayed whole; the cheap ops before matmuls are recomputed
// instead of saved: ops::layer_norm_linear, ops::activation_linear).
#pragma once
#include <cstdint>
#include <string>

namespace bb {

struct CheckpointPolicy {
  enum class Kind { kNone, kFull, kEvery, kSelective };
  Kind kind = Kind::kNone;
  int64_t every = 1;  // kEvery: blocks 0, N, 2N, ... are checkpointed

  // "none", "full", "every:N" or "selective"; ConfigError naming train.checkpointing else.
  static CheckpointPolicy parse(const std::string& text);
  std::string str() const;
  bool wraps(int64_t block) const {
    return kind == Kind::kFull || (kind == Kind::kEvery && block % every == 0);
  }
  bool selective() const { return kind == Kind::kSelective; }
};

}  // namespace bb
