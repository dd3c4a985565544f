// Candidate enumeration, meta dry runs and the time model of the planner.
#include "train/planner.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <vector>
#include <map>

#include "backend/matmul_rate.h"
#include "autograd/backward.h"
#include "backend/meta/meta_backend.h"
#include "core/error.h"
#include "data/dataset.h"
#include "models/causal_lm.h"
#include "ops/ops.h"
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

// The rates the time model rests on, each measured once per process at the model's shapes
// (the median call of 0.2 s of calls): one rate per precision for every plan keeps their order a matter of
// counted work, not of timing noise at each plan's shape.
// - products: a (2048 x C) x (C x 4C) matmul;
// - attention: our kernel, forward and backward, at the model's heads, sequence and head size;
// - everything else (norms, activations, casts, the loss, the optimizer): the bytes an
//   elementwise kernel moves per second over an MLP activation of 2048 tokens (2048 x 4C).
double matmul_rate(int64_t width, DType dtype) {
  static std::map<std::pair<int64_t, DType>, double> cache;
  auto key = std::make_pair(width, dtype);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  return cache[key] = measure_matmul_flops(2048, width, 4 * width, dtype, 10, Statistic::kMedian);
}

double attention_rate(AttentionArgs a, DType dtype) {
  static std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, bool, DType>, double> cache;
  auto key = std::make_tuple(a.heads, a.kv_heads, a.seq, a.head_dim, a.causal, dtype);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  a.batch = std::max<int64_t>(1, (16 + a.heads - 1) / a.heads);  // 16 heads or more: every thread busy
  return cache[key] = measure_attention_flops(a, dtype, 10, Statistic::kMedian);
}

double pointwise_bandwidth(int64_t width) {
  static std::map<int64_t, double> cache;
  if (auto it = cache.find(width); it != cache.end()) return it->second;
  return cache[width] = measure_pointwise_bandwidth(2048 * 4 * width, 10, Statistic::kMedian);
}

// What each kernel call costs besides its work: the op layer's serial part (shape checks,
// allocation, recording the graph, the backward's bookkeeping) and the OpenMP fork and join.
// Measured on a graph with next to nothing to compute (layer norm, GELU and a residual add
// over 8 x 16 values, forward and backward): its time on the CPU (median of 51) over its
// kernel calls, counted by running the same graph on Meta.
double call_seconds() {
  static const double seconds = [] {
    auto graph = [](Device device) {
      Tensor x = Tensor::full(Shape{8, 16}, 0.5f, DType::F32, device);
      Tensor g = Tensor::full(Shape{16}, 1.0f, DType::F32, device), b = Tensor::full(Shape{16}, 0.0f, DType::F32, device);
      x.set_requires_grad(true);
      g.set_requires_grad(true);
      b.set_requires_grad(true);
      backward(sum_all(add(activation(Activation::GeluTanh, layer_norm(x, g, b, 1e-5f)), x)));
    };
    auto& counter = static_cast<MetaBackend&>(backend_for(Device::Meta));
    const double before = counter.flops().calls;
    graph(Device::Meta);
    const double calls = counter.flops().calls - before;
    graph(Device::CPU);
    std::vector<double> t(51);
    for (double& s : t) {
      const auto t0 = std::chrono::steady_clock::now();
      graph(Device::CPU);
      s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    std::nth_element(t.begin(), t.begin() + 25, t.end());
    return t[25] / std::max(calls, 1.0);
  }();
  return seconds;
}

double step_seconds(const DryRunWork& w, const std::string& precision) {
  DType dt = compute_dtype(parse_precision(precision));
  if (dt == DType::F16) dt = DType::F32;  // f16 products run on widened f32 operands
  double s = (w.matmul_flops + w.conv_flops) / matmul_rate(w.width, dt) + w.bytes / pointwise_bandwidth(w.width);
  if (w.attention_flops > 0) s += w.attention_flops / attention_rate(w.attention, dt);
  s += w.calls * call_seconds();
  return s;
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
    // Two steps at least, so the steady state (gradient buffers already in place) is
    // included; two micro-batches a step reach the peak, every further one repeats the same
    // allocations.
    const int64_t samples = std::min<int64_t>(cfg.train.grad_accum_steps, 2) * cfg.train.micro_batch_size;
    trainer.step(samples);
    if (work) {
      // The work of a step in the steady state, split into what each micro-batch does and
      // what happens once a step (the optimizer, clipping): a step of one micro-batch and a
      // step of two, so that K micro-batches cost once + K x each.
      using Flops = MetaBackend::Flops;
      auto step_work = [&](int64_t micro) {
        const Flops f0 = counter.flops();
        trainer.step(micro * cfg.train.micro_batch_size);
        const Flops f1 = counter.flops();
        return Flops{f1.matmul - f0.matmul, f1.attention - f0.attention, f1.conv - f0.conv,
                     f1.bytes - f0.bytes, f1.calls - f0.calls};
      };
      const Flops one = step_work(1);
      const Flops each = cfg.train.grad_accum_steps > 1 ? [&] {
        const Flops two = step_work(2);
        return Flops{two.matmul - one.matmul, two.attention - one.attention, two.conv - one.conv,
                     two.bytes - one.bytes, two.calls - one.calls};
      }() : one;
      const double k = double(cfg.train.grad_accum_steps);
      auto total = [&](double Flops::*part) { return one.*part + (k - 1.0) * (each.*part); };
      work->matmul_flops = total(&Flops::matmul);
      work->attention_flops = total(&Flops::attention);
      work->conv_flops = total(&Flops::conv);
      work->bytes = total(&Flops::bytes);
      work->calls = total(&Flops::calls);
      work->step_flops = work->matmul_flops + work->attention_flops + work->conv_flops;
    } else {
      trainer.step(samples);  // the steady state, gradient buffers already in place
    }
    if (work) {
      work->attention = counter.last_attention();
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
        DryRunWork work;
        row.memory = dry_run(apply_plan(req.cfg, row), &work);
        row.step_flops = work.step_flops;
        row.step_seconds = step_seconds(work, precision);
        plan.rows.push_back(row);
      }
    }
  }
  const int64_t overhead = req.measure_overhead ? req.measure_overhead() : req.overhead;
  for (PlanRow& r : plan.rows) {
    r.overhead = overhead;
    r.fits = r.predicted_bytes() <= req.budget;
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
