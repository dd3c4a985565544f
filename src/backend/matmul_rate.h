// The CPU's kernel rates measured now: what the planner's time model and the benchmarks'
// ceiling rest on.
#pragma once
#include <cstdint>
#include <optional>

#include "backend/backend.h"
#include "backend/meta/meta_backend.h"
#include "core/dtype.h"

namespace bb {

// Each rate is timed after a warm-up call over at least `reps` calls and 0.2 s: from the
// fastest call (a ceiling, as the benchmarks quote it) or the median one (what a typical call
// in a step takes, as the planner's time model wants it).
enum class Statistic { kBest, kMedian };

// FLOP/s of a (m, k) x (k, n) product in `dtype` on the CPU backend, operands hot in cache.
double measure_matmul_flops(int64_t m, int64_t k, int64_t n, DType dtype, int reps,
                            Statistic stat = Statistic::kBest);

// Seconds of the median call of one kernel as a training step makes it: operands rotated
// among copies that together outgrow the caches (up to `max_bytes` of them, one copy at
// least), since a step reads each activation long after it was written. A product beyond
// about 2 GFLOP is timed on a part of it (fewer rows or batch entries) and scaled by FLOPs,
// which keeps a probe short for any model.
double measure_matmul_seconds(const MatmulArgs& args, DType in, DType out, bool bias, int64_t max_bytes);
double measure_attention_seconds(const AttentionArgs& args, DType dtype, bool backward, int64_t max_bytes);
// The same for a kernel call the meta backend recorded, on zero-filled tensors of its shapes.
double measure_replay_seconds(const MetaBackend::CallKey& call, const MetaBackend::Replay& run, int64_t max_bytes);

// One call at exactly the recorded shape, untimed: what a run's first step builds for it (the
// kernel's primitive, its code and scratch) is then in place, for the process's footprint to
// be read with it. Operands are allocated whole, so they must fit where the call does.
// Each returns what the call held for a while outside the allocator and gave back before it
// returned (oneDNN's scratch, a kernel's own buffers): the resident peak during the call less
// the resident memory after it; nullopt where the peak cannot be restarted, so the caller
// must assume a figure and say so. A step holds that too, on top of its own blocks, while the
// kernel runs.
std::optional<int64_t> run_matmul_once(const MatmulArgs& args, DType in, DType out, bool bias);
std::optional<int64_t> run_attention_once(const AttentionArgs& args, DType dtype, bool backward);
std::optional<int64_t> run_replay_once(const MetaBackend::CallKey& call, const MetaBackend::Replay& run);

}  // namespace bb
