// Learning-rate schedules, evaluated per optimizer step (never per micro-batch).
#pragma once
#include <cstdint>
#include <string>

namespace bb {

struct Schedule {
  std::string kind = "cosine";  // "constant" or "cosine" (linear warmup, then cosine decay)
  float lr = 3e-4f;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  float min_lr_ratio = 0.1f;    // cosine decays to lr * min_lr_ratio
  // The learning rate of optimizer step `step` (0-based).
  float lr_at(int64_t step) const;
};

}  // namespace bb
