// Candidate enumeration, meta dry runs and the time model of the planner.
#include "train/planner.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "backend/matmul_rate.h"
#include "core/error.h"
#include "data/dataset.h"
#include "models/causal_lm.h"
#include "train/job.h"

namespace bb {
namespace {

// Full-length token windows on the meta device: every target counts (the worst case for
// padded documents too).
class MetaTokens final : public Dataset {
 public:
  explicit MetaTokens(int64_t seq) : seq_(seq) {}
  Batch batch(int64_t, int64_t count) const override {
    Batch b;
    b.tokens = Tensor::empty(Shape{count, seq_}, DType::I64, Device::Meta);
    b.targets = Tensor::empty(Shape{count, seq_}, DType::I64, Device::Meta);
    b.target_count = count * seq_;
    b.samples = count;
    return b;
  }

 private:
  int64_t seq_;
};

// Matmul rate (FLOP/s) at the shape of a block's widest product for B*T rows, measured on
// the CPU in a few milliseconds and cached.
double matmul_rate(int64_t rows, int64_t width, DType dtype) {
  static std::map<std::tuple<int64_t, int64_t, DType>, double> cache;
  auto key = std::make_tuple(rows, width, dtype);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  return cache[key] = measure_matmul_flops(std::min<int64_t>(rows, 4096), width, 4 * width, dtype, 3);
}

// Training FLOPs of one optimizer step: 6 per matmul parameter and token, attention, and
// the forward work that checkpointing replays.
double step_seconds(const RunConfig& cfg, int64_t micro, int64_t accum, const std::string& policy,
                    const std::string& precision) {
  const auto& m = cfg.model;
  const double L = m.n_layer, C = m.n_embd, T = m.block_size, V = m.vocab_size;
  const double block_params = 12.0 * C * C, tokens = double(micro) * accum * T;
  const double attention = 12.0 * L * T * C;  // forward + backward, per token
  double flop = tokens * (6.0 * (L * block_params + V * C) + attention);
  CheckpointPolicy p = CheckpointPolicy::parse(policy);
  double replayed = 0;
  for (int64_t i = 0; i < m.n_layer; ++i) replayed += p.wraps(i) ? 1 : 0;
  flop += tokens * replayed * (2.0 * block_params + attention / 3.0);
  const DType dt = compute_dtype(parse_precision(precision));
  const double rate = matmul_rate(micro * m.block_size, m.n_embd, dt == DType::F16 ? DType::F32 : dt);
  // Everything around the matmuls (norms, attention's softmax, the optimizer) is taken as a
  // fixed share, measured at about 25% of the step on GPT-small.
  return flop / rate * 1.25;
}

std::vector<int64_t> micro_batch_candidates(int64_t effective) {
  std::vector<int64_t> out;
  for (int64_t b = 1; b <= effective; ++b)
    if (effective % b == 0) out.push_back(b);
  return out;
}

}  // namespace

int64_t PlanRow::predicted_bytes() const { return memory.total_peak + overhead; }

MemoryStats dry_run(const RunConfig& cfg) {
  Allocator& meta = Allocator::of(Device::Meta);
  meta.empty_cache();
  meta.reset_peaks();
  const MemoryStats before = meta.stats();
  {
    // The run's own model: model.init's shapes, LoRA and checkpointing as configured.
    std::unique_ptr<CausalLM> model = make_causal_lm(cfg, Device::Meta);
    std::unique_ptr<Optimizer> opt = make_optimizer(cfg, *model);
    MetaTokens data(std::min(cfg.model.block_size, model->max_positions()));
    SingleProcess comm;
    Trainer trainer(lm_loss(*model), *opt, data, make_schedule(cfg), make_trainer_options(cfg), comm);
    // Two steps, so the steady state (gradient buffers already in place) is included; two
    // micro-batches a step reach the peak, every further one repeats the same allocations.
    const int64_t samples = std::min<int64_t>(cfg.train.grad_accum_steps, 2) * cfg.train.micro_batch_size;
    trainer.step(samples);
    trainer.step(samples);
  }
  MemoryStats s = meta.stats();
  for (int c = 0; c < kNumCategories; ++c) s.peak[c] -= before.live[c];
  s.total_peak -= before.total_live;
  return s;
}

RunConfig apply_plan(const RunConfig& cfg, const PlanRow& row) {
  RunConfig c = cfg;
  c.train.micro_batch_size = row.micro_batch;
  c.train.grad_accum_steps = row.accum;
  c.train.checkpointing = row.checkpointing;
  c.train.precision = row.precision;
  return c;
}

Plan make_plan(const PlanRequest& req) {
  if (req.budget <= 0) throw ConfigError("the memory budget must be positive");
  Plan plan;
  plan.effective_batch = req.cfg.train.micro_batch_size * req.cfg.train.grad_accum_steps;
  for (const std::string& p : req.precisions) parse_precision(p);
  for (const std::string& p : req.policies) CheckpointPolicy::parse(p);
  for (int64_t b : micro_batch_candidates(plan.effective_batch)) {
    for (const std::string& precision : req.precisions) {
      for (const std::string& policy : req.policies) {
        PlanRow row;
        row.micro_batch = b;
        row.accum = plan.effective_batch / b;
        row.checkpointing = policy;
        row.precision = precision;
        row.overhead = req.overhead;
        row.memory = dry_run(apply_plan(req.cfg, row));
        row.fits = row.predicted_bytes() <= req.budget;
        row.step_seconds = step_seconds(req.cfg, b, row.accum, policy, precision);
        plan.rows.push_back(row);
      }
    }
  }
  for (int i = 0; i < int(plan.rows.size()); ++i) {
    const PlanRow& r = plan.rows[i];
    if (r.fits && (plan.best < 0 || r.step_seconds < plan.rows[plan.best].step_seconds)) plan.best = i;
    if (plan.smallest < 0 || r.predicted_bytes() < plan.rows[plan.smallest].predicted_bytes()) plan.smallest = i;
  }
  return plan;
}

std::string format_plan(const Plan& plan, int64_t budget) {
  std::string s = fmt::format("{:>5} {:>5} {:>10} {:>5} | {:>10} {:>10} {:>10} {:>11} {:>10} | {:>10} {:>9} | {}\n",
                              "micro", "accum", "ckpt", "prec", "params", "grads", "optimizer",
                              "activations", "workspace", "peak+fixed", "step s", "fits");
  for (int i = 0; i < int(plan.rows.size()); ++i) {
    const PlanRow& r = plan.rows[i];
    auto cat = [&](Category c) { return format_bytes(r.memory.peak[int(c)]); };
    s += fmt::format("{:>5} {:>5} {:>10} {:>5} | {:>10} {:>10} {:>10} {:>11} {:>10} | {:>10} {:>9.3f} | {}{}\n",
                     r.micro_batch, r.accum, r.checkpointing, r.precision, cat(Category::Parameters),
                     cat(Category::Gradients), cat(Category::OptimizerState), cat(Category::Activations),
                     cat(Category::Workspace), format_bytes(r.predicted_bytes()), r.step_seconds,
                     r.fits ? "yes" : "no", i == plan.best ? "  <- fastest that fits" : "");
  }
  if (plan.best < 0 && plan.smallest >= 0)
    s += fmt::format("nothing fits in {}: the smallest plan needs {}\n", format_bytes(budget),
                     format_bytes(plan.rows[plan.smallest].predicted_bytes()));
  return s;
}

}  // namespace bb
