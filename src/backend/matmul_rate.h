// The CPU's matmul rate measured now: what the planner's time model and the benchmarks'
// ceiling both rest on.
#pragma once
#include <cstdint>

#include "backend/backend.h"
#include "core/dtype.h"

namespace bb {

// Each rate is timed after a warm-up call over at least `reps` calls and 0.2 s: from the
// fastest call (a ceiling, as the benchmarks quote it) or the median one (what a typical call
// in a step takes, as the planner's time model wants it).
enum class Statistic { kBest, kMedian };

// FLOP/s of a (m, k) x (k, n) product in `dtype` on the CPU backend.
double measure_matmul_flops(int64_t m, int64_t k, int64_t n, DType dtype, int reps,
                            Statistic stat = Statistic::kBest);
// FLOP/s of the CPU attention kernel, forward and backward together, at `args` in `dtype`
// (FLOPs counted as attention_flops does).
double measure_attention_flops(const AttentionArgs& args, DType dtype, int reps, Statistic stat);
// Bytes per second of an elementwise kernel (a + b into c, f32) over `floats` elements each:
// the rate of the memory-bound ops around the products.
double measure_pointwise_bandwidth(int64_t floats, int reps, Statistic stat);

}  // namespace bb
