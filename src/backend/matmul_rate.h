// The CPU's matmul rate measured now: what the planner's time model and the benchmarks'
// ceiling both rest on.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace bb {

// FLOP/s of a (m, k) x (k, n) product in `dtype` on the CPU backend: one warm-up call, then
// the best of `reps` timed calls.
double measure_matmul_flops(int64_t m, int64_t k, int64_t n, DType dtype, int reps);

}  // namespace bb
