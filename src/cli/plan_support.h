// Planning shared by `plan` and `train --memory-budget`.
#pragma once
#include <string>

#include "train/config.h"
#include "train/planner.h"

namespace bb {

// What a process's resident memory grows by from the end of planning to its peak, beyond the
// allocator's blocks: the kernels not yet run, the first steps' malloc arenas. Measured 2.4 to
// 2.9 MiB on the default job and GPT-small shapes (fp32 and bf16).
constexpr int64_t kStepPages = int64_t(2) << 20;
// The process's memory outside the allocator, read after the corpus is loaded and the
// matmul probes have run.
int64_t process_overhead_bytes();
Plan plan_for(const RunConfig& cfg, int64_t budget, const std::string& precisions, const std::string& policies);
// The fastest plan that fits, applied to cfg; the CPU allocator is held to the budget. Throws
// OutOfBudget (saying the smallest memory that would fit) before allocating anything. The
// chosen row goes to `chosen` when given (the run's report draws its prediction).
RunConfig plan_to_budget(const RunConfig& cfg, int64_t budget, PlanRow* chosen = nullptr);

}  // namespace bb
