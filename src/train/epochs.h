// Training by epochs (train.epochs): a window never crosses the end of an epoch, so the last
// window of an epoch holds only that epoch's samples, fewer than K*B, and the trainer
// normalises it by its own count (docs/notes/one-step.md) instead of topping it up with the
// next epoch's first samples.
#pragma once
#include <cstdint>

namespace bb {

// Optimizer steps for `epochs` passes over `epoch_size` samples, `per_step` samples a window:
// epochs * ceil(epoch_size / per_step).
int64_t steps_for_epochs(int64_t epochs, int64_t epoch_size, int64_t per_step);

// Samples in the window that starts at sample `cursor`: per_step, or what is left of the
// epoch when less; per_step when epoch_size is 0 (a stream without epochs).
int64_t window_samples(int64_t cursor, int64_t epoch_size, int64_t per_step);

}  // namespace bb
