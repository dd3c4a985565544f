// Epoch-bounded windows.
#include "train/epochs.h"

#include <algorithm>

namespace bb {

int64_t steps_for_epochs(int64_t epochs, int64_t epoch_size, int64_t per_step) {
  return epochs * ((epoch_size + per_step - 1) / per_step);
}

int64_t window_samples(int64_t cursor, int64_t epoch_size, int64_t per_step) {
  if (epoch_size <= 0) return per_step;
  return std::min(per_step, epoch_size - cursor % epoch_size);
}

}  // namespace bb
