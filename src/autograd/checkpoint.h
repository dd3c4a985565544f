// Activation checkpointing as a wrapper: y = checkpoint(block, x) keeps only x, runs the
// block without recording, and re-runs it during backward, then back-propagates through
// the replay. The block is told when it is a replay (models set Context::recomputing from
// it, so dropout draws the same masks and BatchNorm does not update its statistics twice).
// See docs/notes/checkpointing.md.
#pragma once
#include <functional>

#include "core/tensor.h"

namespace bb {

using Block = std::function<Tensor(const Tensor& x, bool recomputing)>;

// `params`: the trained parameters the block reads. The block is checkpointed when x or any
// of them needs a gradient (a frozen input does not mean a frozen block: LoRA).
Tensor checkpoint(const Block& block, const Tensor& x, const std::vector<Tensor>& params = {});

}  // namespace bb
