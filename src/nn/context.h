// Context: what a forward pass needs to know besides its inputs, passed explicitly (never a
// global): the compute dtype of the precision policy, training or eval, and the coordinates
// that key dropout's random stream, so a replay draws the same masks.
#pragma once
#include <cstdint>

#include "backend/backend.h"
#include "core/dtype.h"

namespace bb {

struct Context {
  DType compute = DType::F32;  // activations and matmuls; master weights stay f32
  bool training = false;
  // False turns every dropout site into the identity while training (model, config.json's
  // resid_pdrop, LoRA): `verify` compares updates whose masks would depend on the micro-batch.
  bool dropout = true;
  uint64_t seed = 0;
  uint64_t step = 0;   // optimizer step
  uint64_t micro = 0;  // micro-batch within the window
  // The global index of the batch's first sample, and its rows: dropout draws each sample's
  // mask from the sample's own part of a site's stream, so masks do not depend on how
  // samples are split into micro-batches and ranks. rows 0: keyed by (step, micro) instead.
  uint64_t sample0 = 0;
  int64_t rows = 0;
  // True while activation checkpointing replays a block: layers with side effects (BatchNorm
  // running statistics) must not apply them a second time.
  bool recomputing = false;
  // The seed the coming backward will carry (loss scale x the trainer's power-of-two
  // prescale). Ops that form gradients during the forward (linear_cross_entropy) apply it
  // before casting them to a 16-bit dtype, where unscaled probabilities of a large
  // vocabulary fall below f16's normal range.
  float grad_scale = 1.0f;
  // Packed rows (several documents end to end in one row): (B, T) i64, each token's position
  // in its own document. Attention then stays within a document and positions (RoPE,
  // learned) restart at 0 for each. Undefined: one sequence a row, positions 0..T-1.
  Tensor positions{};

  // The stream of one dropout site (a stable number per place in the model) for a tensor of
  // `numel` elements laid out sample by sample.
  RngKey rng(uint64_t site, int64_t numel) const {
    if (rows > 0 && numel % rows == 0)
      return RngKey{seed, site * 0x165667B19E3779F9ull, sample0, static_cast<uint64_t>(numel / rows)};
    uint64_t off = (step * 0x9E3779B97F4A7C15ull) ^ (micro * 0xC2B2AE3D27D4EB4Full) ^
                   (site * 0x165667B19E3779F9ull);
    return RngKey{seed, off};
  }
};

}  // namespace bb
