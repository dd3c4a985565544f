// Candidate enumeration, meta dry runs and the time model of the planner.
#include "train/planner.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
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

// The rates the time model rests on, each measured once per process (cached), so that every
// plan of a run is timed from the same figures:
// - each product shape (matmul and attention calls, forward and backward) the dry run
//   counted: its median call with operands cold, as in a step (backend/matmul_rate.h);
// - convolutions: a (2048 x C) x (C x 4C) matmul's rate;
// - every other kernel (norms, activations, casts, the loss, the optimizer): its largest call
//   in the dry run, replayed on the CPU the same way, gives its seconds per byte moved.
// What a probe may hold besides the process's fixed overhead: the budget less that overhead,
// so that planning under a budget stays under it too (a plan that fits holds every tensor
// of any one of its calls at once, so one copy of a call's operands always fits).
int64_t g_probe_bytes = 0;

// A probe's seconds, once per key and process (one cache per key type). Each probe's copies
// go back to the system at once, as no other probe reuses them, and so do its kernels'
// primitives: those of every shape of every plan together held 45 MiB on the default job,
// past the budget the probes must stay within.
template <class Key, class Probe>
double probed(const Key& key, Probe&& probe) {
  static std::map<Key, double> cache;
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  const double s = probe();
  Allocator::of(Device::CPU).empty_cache();
  backend_for(Device::CPU).release_caches();
  return cache[key] = s;
}

double matmul_seconds(const MetaBackend::MatmulKey& key) {
  return probed(key, [&] {
    const auto& [batch, m, n, k, ta, tb, bb, acc, bias, in, out] = key;
    return measure_matmul_seconds(MetaBackend::matmul_args(key), in, out, bias, g_probe_bytes);
  });
}

double attention_seconds(const MetaBackend::AttentionKey& key) {
  return probed(key, [&] {
    const auto& [batch, heads, kv_heads, seq, head_dim, causal, dtype, backward] = key;
    return measure_attention_seconds(MetaBackend::attention_args(key), dtype, backward, g_probe_bytes);
  });
}

double kernel_seconds(const MetaBackend::CallKey& key) {
  return probed(key, [&] {
    auto& meta = static_cast<MetaBackend&>(backend_for(Device::Meta));
    return measure_replay_seconds(key, meta.replay(key), g_probe_bytes);
  });
}

double matmul_rate(int64_t width, DType dtype) {
  static std::map<std::pair<int64_t, DType>, double> cache;
  auto key = std::make_pair(width, dtype);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  return cache[key] = measure_matmul_flops(2048, width, 4 * width, dtype, 10, Statistic::kMedian);
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

// Every call the dry run counted, at its own shape, plus each call's fixed cost.
double step_seconds(const DryRunWork& w, const std::string& precision) {
  const MetaBackend::Flops& f = w.counted;
  double s = f.calls * call_seconds();
  for (const auto& [key, calls] : f.kernels) s += calls * kernel_seconds(key);
  for (const auto& [key, calls] : f.matmuls) s += calls * matmul_seconds(key);
  for (const auto& [key, calls] : f.attentions) s += calls * attention_seconds(key);
  if (f.conv > 0) {
    DType dt = compute_dtype(parse_precision(precision));
    if (dt == DType::F16) dt = DType::F32;  // f16 products run on widened f32 operands
    s += f.conv / matmul_rate(w.width, dt);
  }
  return s;
}

// The process's fixed overhead with every kernel of one plan built once at its shape, as
// after a run's first step, plus the most any one kernel holds outside the allocator while it
// runs (oneDNN's scratch: 1.5 MiB for the products of 512 rows on the CLI tests' model), which
// a step reaches on top of its blocks. Where the kernel's peak cannot be restarted that is
// kUnmeasuredScratch instead, and `measured` says so. The kernels are released again after
// the reading.
template <class Measure>
int64_t overhead_with_kernels(const DryRunWork& w, Measure&& measure, bool* measured) {
  auto& meta = static_cast<MetaBackend&>(backend_for(Device::Meta));
  int64_t scratch = 0;
  *measured = true;
  auto keep = [&](std::optional<int64_t> held) {
    if (held) scratch = std::max(scratch, *held);
    else *measured = false;
  };
  for (const auto& [key, calls] : w.counted.kernels) keep(run_replay_once(key, meta.replay(key)));
  for (const auto& [key, calls] : w.counted.matmuls) {
    const auto& [batch, m, n, k, ta, tb, bb, acc, bias, in, out] = key;
    keep(run_matmul_once(MetaBackend::matmul_args(key), in, out, bias));
  }
  for (const auto& [key, calls] : w.counted.attentions) {
    const auto& [batch, heads, kv_heads, seq, head_dim, causal, dtype, backward] = key;
    keep(run_attention_once(MetaBackend::attention_args(key), dtype, backward));
  }
  if (!*measured) scratch = std::max(scratch, kUnmeasuredScratch);
  const int64_t overhead = measure();
  backend_for(Device::CPU).release_caches();
  return overhead + scratch;
}

// Among plans whose predicted times are within 5% of the fastest (the rates they rest on are
// measured, and noise must not decide), whether plan a goes before plan b: fewer FLOPs (less
// replay), then no recomputation at all, then the more exact precision (fp32, bf16, fp16),
// then the larger micro-batch (fewer, larger products), then the smaller peak. Measured
// against the fastest rather than pair by pair, the rule is an order: which plan comes first
// does not depend on the order the plans are looked at in.
bool preferred(const PlanRow& a, const PlanRow& b) {
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

int fastest_that_fits(const std::vector<PlanRow>& rows) {
  double fastest = std::numeric_limits<double>::infinity();
  for (const PlanRow& r : rows)
    if (r.fits) fastest = std::min(fastest, r.step_seconds);
  int best = -1;
  for (int i = 0; i < int(rows.size()); ++i)
    if (rows[i].fits && rows[i].step_seconds <= fastest * kTimeTie && (best < 0 || preferred(rows[i], rows[best])))
      best = i;
  return best;
}

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
    // Rank 0 of the run's ranks: under ZeRO-1 its share of the optimizer state.
    std::unique_ptr<Optimizer> opt = make_optimizer(cfg, *model, 0, world().size());
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
        return MetaBackend::combine(counter.flops(), 1, f0, -1);
      };
      const Flops one = step_work(1);
      const Flops each = cfg.train.grad_accum_steps > 1 ? MetaBackend::combine(step_work(2), 1, one, -1) : one;
      work->counted = MetaBackend::combine(one, 1, each, double(cfg.train.grad_accum_steps) - 1.0);
      work->step_flops = work->counted.total();
    } else {
      trainer.step(samples);  // the steady state, gradient buffers already in place
    }
    if (work) {
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
  std::vector<DryRunWork> works;
  for (int64_t b : micro_batch_candidates(plan.effective_batch)) {
    for (const std::string& precision : req.precisions) {
      for (const std::string& policy : req.policies) {
        PlanRow row;
        row.micro_batch = b;
        row.accum = plan.effective_batch / b;
        row.checkpointing = policy;
        row.precision = precision;
        DryRunWork& work = works.emplace_back();
        row.memory = dry_run(apply_plan(req.cfg, row), &work);
        row.step_flops = work.step_flops;
        plan.rows.push_back(row);
      }
    }
  }
  // The fixed overhead is read once the OpenMP threads and oneDNN's code and scratch are in:
  // the call-cost probe and a (2048 x C) x (C x 4C) product in each precision bring them, as
  // a run's first steps do; the per-shape probes come after, and their primitives go again.
  call_seconds();
  for (const std::string& p : req.precisions) {
    DType dt = compute_dtype(parse_precision(p));
    matmul_rate(works.empty() ? 64 : works.front().width, dt == DType::F16 ? DType::F32 : dt);
  }
  auto measure = [&] { return req.measure_overhead ? req.measure_overhead() : req.overhead; };
  const int64_t before = measure();
  g_probe_bytes = std::max<int64_t>(0, req.budget - before);
  for (size_t i = 0; i < plan.rows.size(); ++i) {
    PlanRow& r = plan.rows[i];
    r.overhead = before;
    // Only a plan that fits is timed: the others' probes could not stay within the budget.
    r.step_seconds = r.predicted_bytes() <= req.budget ? step_seconds(works[i], r.precision) : std::nan("");
  }
  // Read again after the probes (their primitives released): what they leave in the heap
  // and in oneDNN's kernel caches stays for the run too. A plan it pushes past the budget is
  // refused, its time still shown.
  plan.overhead = std::max(before, measure());
  for (PlanRow& r : plan.rows) {
    r.overhead = plan.overhead;
    r.fits = r.predicted_bytes() <= req.budget;
  }
  // The fastest plan that fits, with its own kernels built: their primitives' code and
  // oneDNN's scratch for them stay for the whole run (2 to 6 MiB on the default job in bf16),
  // and a plan they push past the budget gives way to the next.
  for (;;) {
    plan.best = fastest_that_fits(plan.rows);
    if (plan.best < 0 || !req.measure_overhead) break;
    PlanRow& best = plan.rows[plan.best];
    best.overhead = std::max(best.overhead, overhead_with_kernels(works[plan.best], measure, &plan.scratch_measured));
    best.fits = best.predicted_bytes() <= req.budget;
    if (best.fits) break;
  }
  for (int i = 0; i < int(plan.rows.size()); ++i) {
    const PlanRow& r = plan.rows[i];
    if (plan.smallest < 0 || r.predicted_bytes() < plan.rows[plan.smallest].predicted_bytes()) plan.smallest = i;
  }
  return plan;
}

std::string format_plan(const Plan& plan, int64_t budget) {
  // The quantized column shows only where a q8_0 / q4_0 LoRA base holds bytes.
  bool quantized = false;
  for (const PlanRow& r : plan.rows) quantized = quantized || r.memory.peak[int(Category::QuantizedWeights)] > 0;
  const std::string qhead = quantized ? fmt::format(" {:>10}", "quantized") : "";
  std::string s = fmt::format("{:>5} {:>5} {:>10} {:>5} | {:>10}{} {:>10} {:>10} {:>11} {:>10} | {:>10} {:>9} | {}\n",
                              "micro", "accum", "ckpt", "prec", "params", qhead, "grads", "optimizer",
                              "activations", "workspace", "peak+fixed", "step s", "fits");
  for (int i = 0; i < int(plan.rows.size()); ++i) {
    const PlanRow& r = plan.rows[i];
    auto cat = [&](Category c) { return format_bytes(r.memory.peak[int(c)]); };
    const std::string seconds = std::isnan(r.step_seconds) ? "-" : fmt::format("{:.3f}", r.step_seconds);
    const std::string qcell = quantized ? fmt::format(" {:>10}", cat(Category::QuantizedWeights)) : "";
    s += fmt::format("{:>5} {:>5} {:>10} {:>5} | {:>10}{} {:>10} {:>10} {:>11} {:>10} | {:>10} {:>9} | {}{}\n",
                     r.micro_batch, r.accum, r.checkpointing, r.precision, cat(Category::Parameters), qcell,
                     cat(Category::Gradients), cat(Category::OptimizerState), cat(Category::Activations),
                     cat(Category::Workspace), format_bytes(r.predicted_bytes()), seconds,
                     r.fits ? "yes" : "no", i == plan.best ? "  <- fastest that fits" : "");
  }
  if (!plan.scratch_measured)
    s += fmt::format("the kernels' scratch outside the allocator could not be measured here (/proc/self/clear_refs "
                     "is not writable): the fastest plan's fixed overhead assumes {} for it\n",
                     format_bytes(kUnmeasuredScratch));
  if (plan.best < 0 && plan.smallest >= 0)
    s += fmt::format("nothing fits in {}: the smallest plan needs {}\n", format_bytes(budget),
                     format_bytes(plan.rows[plan.smallest].predicted_bytes()));
  return s;
}

}  // namespace bb
