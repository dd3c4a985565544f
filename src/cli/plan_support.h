// Planning shared by `plan` and `train --memory-budget`.
#pragma once
#include <string>

#include "train/config.h"
#include "train/planner.h"

namespace bb {

int64_t process_overhead_bytes();
Plan plan_for(const RunConfig& cfg, int64_t budget, const std::string& precisions, const std::string& policies);
// The fastest plan that fits, applied to cfg; the CPU allocator is held to the budget. Throws
// OutOfBudget (saying the smallest memory that would fit) before allocating anything.
RunConfig plan_to_budget(const RunConfig& cfg, int64_t budget);

}  // namespace bb
