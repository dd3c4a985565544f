// `bigbatch plan` and the planning done by `bigbatch train --memory-budget`.
#include <fmt/format.h>
#include <malloc.h>

#include "cli/commands.h"
#include "cli/plan_support.h"
#include "core/error.h"
#include "core/process_memory.h"
#include "dist/communicator.h"
#include "train/job.h"
#include "train/planner.h"
#include "train/vision_job.h"

namespace bb {
namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

}  // namespace

int64_t process_overhead_bytes() {
  // What the process holds outside the allocator while it trains: the program and its
  // libraries, the tokenized corpus (loaded before planning), the OpenMP threads' stacks and
  // oneDNN's code and scratch (brought in by the rate probes, which run first). That is
  // resident memory less the allocator's live blocks (its cache emptied first), which the plan
  // counts, plus the pages the other kernels and the first steps add (kStepPages).
  Allocator& cpu = Allocator::of(Device::CPU);
  cpu.empty_cache();  // the probes' blocks: the run starts without them, as the dry run does
  malloc_trim(0);     // and what oneDNN freed after them, still in the heap, is handed back
  const MemoryStats m = cpu.stats();
  return current_rss_bytes() - m.total_live + kStepPages;
}

Plan plan_for(const RunConfig& cfg, int64_t budget, const std::string& precisions, const std::string& policies) {
  // Plans are measured on this machine: a budget it does not have would be planned for and
  // then met by the kernel's out-of-memory killer, not by the allocator's refusal.
  const int64_t physical = physical_memory_bytes();
  if (physical > 0 && budget > physical)
    throw ConfigError(fmt::format("the memory budget of {} is more than this machine's {} of memory",
                                  format_bytes(budget), format_bytes(physical)));
  PlanRequest req;
  req.cfg = cfg;
  req.budget = budget;
  req.measure_overhead = process_overhead_bytes;
  if (!precisions.empty()) req.precisions = split_list(precisions);
  if (!policies.empty()) req.policies = split_list(policies);
  return make_plan(req);
}

int run_plan(const PlanArgs& a) {
  std::string config = a.config;
  std::vector<std::string> overrides = a.overrides;
  if (config.find('=') != std::string::npos) {
    overrides.insert(overrides.begin(), config);
    config.clear();
  }
  RunConfig cfg = load_run_config(config, overrides);
  if (is_vision_model_type(cfg.model_type))
    throw ConfigError(fmt::format("bigbatch plan plans language models only, and model.type '{}' is a vision model",
                                  cfg.model_type));
  const int64_t budget = parse_bytes(a.memory);
  // Under mpirun every rank holds the same model and a K x B share of the window, so one plan
  // serves all: rank 0 makes it alone (ranks planning at once would time each other's work).
  const int ranks = world().size();
  if (ranks > 1 && world().rank() != 0) return 0;
  const JobData data = load_job_data(cfg);  // held while planning, as `train` holds it
  Plan plan = plan_for(cfg, budget, a.precisions, a.policies);
  fmt::print("plan for an effective batch of {} sequences of {} tokens in {} (fixed process overhead {}):\n",
             plan.effective_batch, cfg.model.block_size, format_bytes(budget),
             format_bytes(plan.overhead));
  if (ranks > 1) {
    fmt::print("  per rank of {}: {} sequences a step in all; each rank also holds up to {} of gradient buckets "
               "(dist.bucket_mb, and half of it for the ring), not in the figures below\n",
               ranks, plan.effective_batch * ranks, format_bytes(static_cast<int64_t>(1.5 * cfg.dist.bucket_mb * (1 << 20))));
    fmt::print("  optimizer: {}\n", cfg.dist.zero == 1
                                         ? fmt::format("rank 0's shard, 1/{} of the state (ZeRO-1, dist.zero=1)", ranks)
                                         : "the whole state, held by every rank (dist.zero=1 shards it)");
  }
  fmt::print("{}", format_plan(plan, budget));
  return plan.best >= 0 ? 0 : 1;
}

RunConfig plan_to_budget(const RunConfig& cfg, int64_t budget, PlanRow* chosen) {
  Plan plan = plan_for(cfg, budget, "", "");
  if (plan.best < 0) {
    const PlanRow& s = plan.rows[plan.smallest];
    const int64_t fixed = s.memory.peak[int(Category::Parameters)] + s.memory.peak[int(Category::Gradients)] +
                          s.memory.peak[int(Category::OptimizerState)];
    if (fixed + s.overhead > budget)
      throw OutOfBudget(fmt::format("the memory budget of {} is smaller than the parameters, gradients and optimizer "
                                    "state alone ({} with the process's {} fixed overhead)",
                                    format_bytes(budget), format_bytes(fixed + s.overhead), format_bytes(s.overhead)));
    throw OutOfBudget(fmt::format("no plan fits in {}: the smallest needs {} (micro-batch {}, checkpointing {}, {})",
                                  format_bytes(budget), format_bytes(s.predicted_bytes()), s.micro_batch,
                                  s.checkpointing, s.precision));
  }
  const PlanRow& r = plan.rows[plan.best];
  if (chosen) *chosen = r;
  fmt::print("  plan for {}: micro-batch {} x {} accumulation, checkpointing {}, {}; predicted peak {} "
             "({} counted + {} fixed), {:.2f} s a step\n",
             format_bytes(budget), r.micro_batch, r.accum, r.checkpointing, r.precision,
             format_bytes(r.predicted_bytes()), format_bytes(r.memory.total_peak), format_bytes(r.overhead),
             r.step_seconds);
  // The allocator is held to what the plan left for counted memory.
  Allocator::of(Device::CPU).set_budget(budget - r.overhead + Allocator::of(Device::CPU).stats().total_live);
  return apply_plan(cfg, r);
}

}  // namespace bb
