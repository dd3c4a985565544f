// Candidate enumeration, meta dry runs and the time model of the planner.
#include "train/planner.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "backend/matmul_rate.h"
#include "backend/meta/meta_backend.h"
#include "core/error.h"
#include "data/dataset.h"
#include "models/causal_lm.h"
#include "train/job.h"

namespace bb {
namespace {

// The work around the matmuls (norms, softmax, casts, the optimizer) as a share of the
// products' time. Measured on the default job (4 x 128, T 128) and GPT-small shapes.
constexpr double kAroundTheProducts = 1.25;

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

// The matmul rate (FLOP/s) of one dtype at the model's width: a (2048 x C) x (C x 4C)
// product, best of ten calls, measured once per process. One rate for every plan of a
// precision keeps their order a matter of FLOPs, not of timing noise at each plan's shape.
double matmul_rate(int64_t width, DType dtype) {
  static std::map<std::pair<int64_t, DType>, double> cache;
  auto key = std::make_pair(width, dtype);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  return cache[key] = measure_matmul_flops(2048, width, 4 * width, dtype, 10);
}

// The step's FLOPs (counted in the dry run) at the matmul rate of its compute dtype, plus the
// work around the products (norms, softmax, casts, the optimizer) as a fixed share of it.
double step_seconds(double flops, int64_t width, const std::string& precision) {
  const DType dt = compute_dtype(parse_precision(precision));
  const double rate = matmul_rate(width, dt == DType::F16 ? DType::F32 : dt);
  return flops / rate * kAroundTheProducts;
}

// Whether plan a beats plan b. Predicted times within 5% of each other are a tie (the matmul
// rates they rest on are measured, and noise must not decide); a tie goes to fewer FLOPs
// (less replay), then no recomputation at all, then the more exact precision (fp32, bf16, fp16), then the larger
// micro-batch (fewer, larger products), then the smaller peak.
bool faster(const PlanRow& a, const PlanRow& b) {
  const double lo = std::min(a.step_seconds, b.step_seconds), hi = std::max(a.step_seconds, b.step_seconds);
  if (hi > lo * 1.05) return a.step_seconds < b.step_seconds;
  if (a.step_flops != b.step_flops) return a.step_flops < b.step_flops;
  // Equal products: selective still recomputes norms and activations, none nothing.
  auto recompute = [](const std::string& p) { return p == "none" ? 0 : 1; };
  if (recompute(a.checkpointing) != recompute(b.checkpointing))
    return recompute(a.checkpointing) < recompute(b.checkpointing);
  auto exactness = [](const std::string& p) { return p == "fp32" ? 0 : p == "bf16" ? 1 : 2; };
  if (exactness(a.precision) != exactness(b.precision)) return exactness(a.precision) < exactness(b.precision);
  if (a.micro_batch != b.micro_batch) return a.micro_batch > b.micro_batch;
  return a.predicted_bytes() < b.predicted_bytes();
}

std::vector<int64_t> micro_batch_candidates(int64_t effective) {
  std::vector<int64_t> out;
  for (int64_t b = 1; b <= effective; ++b)
    if (effective % b == 0) out.push_back(b);
  return out;
}

}  // namespace

int64_t PlanRow::predicted_bytes() const { return memory.total_peak + overhead; }

MemoryStats dry_run(const RunConfig& cfg, DryRunWork* work) {
  auto& counter = static_cast<MetaBackend&>(backend_for(Device::Meta));
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
    const double before_second = counter.flops().total();
    trainer.step(samples);
    if (work) {
      // The second step's work, for min(K, 2) micro-batches: each micro-batch does the same.
      const int64_t micro = std::min<int64_t>(cfg.train.grad_accum_steps, 2);
      work->step_flops = (counter.flops().total() - before_second) / double(micro) *
                         double(cfg.train.grad_accum_steps);
      for (const auto& [name, p] : model->named_parameters())
        if (p.ndim() == 2) {  // the token embedding comes first: (V, C)
          work->width = p.dim(1);
          break;
        }
    }
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
        DryRunWork work;
        row.memory = dry_run(apply_plan(req.cfg, row), &work);
        row.fits = row.predicted_bytes() <= req.budget;
        row.step_flops = work.step_flops;
        row.step_seconds = step_seconds(work.step_flops, work.width, precision);
        plan.rows.push_back(row);
      }
    }
  }
  for (int i = 0; i < int(plan.rows.size()); ++i) {
    const PlanRow& r = plan.rows[i];
    if (r.fits && (plan.best < 0 || faster(r, plan.rows[plan.best]))) plan.best = i;
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
