// Start, stop and print of train.profile.
#include "cli/step_profile.h"

#include <fmt/format.h>

#include "backend/profile.h"

namespace bb {

namespace {
constexpr int64_t kProfiledSteps = 3;
}

void StepProfile::before_step() {
  if (on_ && seen_ == skip_) start_profile();
}

void StepProfile::after_step(bool last) {
  if (!on_) return;
  if (seen_++ < skip_) return;
  if (++profiled_ < kProfiledSteps && !last) return;
  fmt::print("{}", format_profile(stop_profile(), profiled_));
  on_ = false;
}

}  // namespace bb
