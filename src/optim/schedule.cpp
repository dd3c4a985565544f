// Warmup + cosine and constant schedules.
#include "optim/schedule.h"

#include <algorithm>
#include <cmath>

namespace bb {

float Schedule::lr_at(int64_t step) const {
  if (warmup_steps > 0 && step < warmup_steps)
    return lr * static_cast<float>(step + 1) / static_cast<float>(warmup_steps);
  if (kind == "constant") return lr;
  const int64_t span = std::max<int64_t>(1, total_steps - warmup_steps);
  const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return static_cast<float>(lr * (min_lr_ratio + (1.0 - min_lr_ratio) * cosine));
}

}  // namespace bb
