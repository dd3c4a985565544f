// The planner: for an effective batch and a memory budget, dry-runs one training step on
// the meta backend for each candidate (micro-batch size, checkpoint policy, precision),
// predicts its peak memory by category exactly and its step time by timing every kernel
// call the dry run recorded, at its own shape, on the CPU, and picks the fastest plan that
// fits (times within 5% tie, and a fixed rule decides between them).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/meta/meta_backend.h"
#include "core/allocator.h"
#include "train/config.h"

namespace bb {

struct PlanRequest {
  RunConfig cfg;                          // model, data and the effective batch (B * K)
  int64_t budget = 0;                     // bytes for the whole process
  int64_t overhead = 0;                   // bytes the process holds outside the allocator
  // When set, read after every dry run and matmul-rate probe (instead of `overhead`), so
  // that it sees the threads and kernel code the probes brought in.
  std::function<int64_t()> measure_overhead;
  std::vector<std::string> precisions{"fp32", "bf16"};
  std::vector<std::string> policies{"none", "selective", "every:2", "full"};
};

struct PlanRow {
  int64_t micro_batch = 0, accum = 0;
  std::string checkpointing, precision;
  MemoryStats memory;                     // predicted: peak per category and total peak
  double step_seconds = 0;                // predicted; NaN for a plan that does not fit (not timed)
  double step_flops = 0;                  // counted in the dry run, checkpoint replays included
  bool fits = false;
  int64_t predicted_bytes() const;        // counted peak + the request's overhead
  int64_t overhead = 0;
};

struct Plan {
  std::vector<PlanRow> rows;
  int best = -1;                          // fastest row that fits; -1 when none does
  int smallest = -1;                      // the row needing the least memory
  int64_t effective_batch = 0;
  int64_t overhead = 0;  // the fixed overhead of every row; the best row's may be larger (its kernels built)
  // False where the resident peak of a kernel call could not be read, and the best row's
  // overhead holds kUnmeasuredScratch for the kernels' scratch instead.
  bool scratch_measured = true;
};

// The kernels' scratch outside the allocator that a plan assumes where it cannot be measured:
// the most measured, 8 MiB, on the default job in bf16 on a CPU without AVX512_BF16, where
// the products widen their operands to f32 (oneDNN's own scratch was 1.5 MiB at most).
inline constexpr int64_t kUnmeasuredScratch = int64_t(8) << 20;

Plan make_plan(const PlanRequest& request);

// Predicted step times within this factor of the fastest are a tie.
inline constexpr double kTimeTie = 1.05;

// The row make_plan picks among `rows` (-1 when none fits): of the rows that fit and are
// within kTimeTie of the fastest of them, the one with the fewest FLOPs, then no recomputation,
// then the more exact precision, then the larger micro-batch, then the smaller peak. Times
// are measured, so the tie keeps noise from deciding between plans doing the same work.
int fastest_that_fits(const std::vector<PlanRow>& rows);

// The memory one training step of `cfg` takes on the meta backend (two steps at least are
// run, so the steady state with gradient buffers in place is included), and with `work` the
// work one optimizer step does, for the time model.
struct DryRunWork {
  double step_flops = 0;  // one optimizer step's products (matmul, attention, conv), in FLOPs
  MetaBackend::Flops counted;  // everything one optimizer step does, products by shape
  int64_t width = 0;      // the model's width (the token embedding's columns)
};
MemoryStats dry_run(const RunConfig& cfg, DryRunWork* work = nullptr);

// cfg with a row's micro-batch, accumulation, checkpointing and precision.
RunConfig apply_plan(const RunConfig& cfg, const PlanRow& row);

// The plan as a table for the terminal; the best row is marked.
std::string format_plan(const Plan& plan, int64_t budget);

}  // namespace bb
