// `bigbatch verify`: on the user's own model and data, one window as K micro-batches of B
// and as one batch of K*B, from the same weights. What is compared, and why, is in
// docs/notes/gradient-accumulation.md ("What verify compares").
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "backend/backend.h"
#include "cli/commands.h"
#include "core/error.h"
#include "dist/communicator.h"
#include "train/job.h"

namespace bb {
namespace {

double max_abs(const std::vector<float>& x) {
  double m = 0;
  for (float v : x) m = std::max(m, std::abs(double(v)));
  return m;
}

// Per tensor: max |a - b| over max |b| of that tensor, except that a tensor whose reference
// is below `floor` is measured against the floor. Such a tensor's exact value is zero (the
// attention key bias: softmax ignores a constant added to every score) and what is left of
// it is rounding, which no relative measure of its own could tell from an error.
struct Comparison {
  double worst = 0;
  std::string worst_name;
  void see(const std::string& name, const std::vector<float>& a, const std::vector<float>& b,
           double floor) {
    double diff = 0;
    for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
    const double e = diff / std::max(max_abs(b), floor);
    if (e > worst || worst_name.empty()) {
      worst = std::max(worst, e);
      worst_name = name;
    }
  }
};

// Named float copies of the tensors `pick` returns (undefined ones are left out).
template <class Pick>
std::vector<std::pair<std::string, std::vector<float>>> snapshot(const Module& m, Pick pick) {
  std::vector<std::pair<std::string, std::vector<float>>> out;
  for (const auto& [name, p] : m.named_parameters()) {
    Tensor t = pick(p);
    if (t.defined()) out.emplace_back(name, t.to_floats());
  }
  return out;
}

using Snapshot = std::vector<std::pair<std::string, std::vector<float>>>;

Comparison compare(const Snapshot& a, const Snapshot& b, double floor_fraction) {
  double largest = 0;
  for (const auto& [n, v] : b) largest = std::max(largest, max_abs(v));
  Comparison c;
  for (size_t i = 0; i < a.size(); ++i) c.see(a[i].first, a[i].second, b[i].second, floor_fraction * largest);
  return c;
}

// The common, wrong accumulation: each micro-batch's gradient normalised by its own token
// count, then the mean over the K micro-batches. Runs on a K = 1 job reading the same
// samples micro-batch by micro-batch, and leaves the result in its gradients.
StepResult mean_of_micro_means(Job& job, int64_t k) {
  std::vector<Tensor> sum;
  StepResult total;
  double loss = 0;
  for (int64_t i = 0; i < k; ++i) {
    StepResult r = job.trainer->compute_gradients();
    total.tokens += r.tokens;
    loss += r.loss / double(k);
    size_t j = 0;
    for (const ParamGroup& p : job.optimizer->params()) {
      Tensor g = p.param.grad();
      if (!g.defined()) continue;
      if (sum.size() <= j) sum.push_back(Tensor::zeros(g.shape()));
      backend_for(g.device()).accumulate(sum[j], g, 1.0f / float(k));
      ++j;
    }
    job.optimizer->zero_grad();
  }
  // zero_grad keeps the buffers; hand the mean back to them for apply_gradients.
  size_t j = 0;
  for (const ParamGroup& p : job.optimizer->params())
    if (Tensor g = p.param.grad(); g.defined()) backend_for(g.device()).cast(sum[j++], g);
  total.loss = loss;
  total.lr = job.schedule.lr_at(0);
  return total;
}

}  // namespace

double verify_tolerance(const std::string& precision) {
  if (precision == "bf16") return 3e-2;
  if (precision == "fp16") return 1e-2;
  return 1e-4;
}

int run_verify(const VerifyArgs& a) {
  std::string config = a.config;
  std::vector<std::string> overrides = a.overrides;
  if (config.find('=') != std::string::npos) {
    overrides.insert(overrides.begin(), config);
    config.clear();
  }
  RunConfig split = load_run_config(config, overrides);
  if (!(a.tolerance >= 0) || !std::isfinite(a.tolerance))
    throw ConfigError(fmt::format("verify --tolerance must be a finite number >= 0 (0: the precision's own), got {}",
                                  a.tolerance));
  const double tolerance = a.tolerance > 0 ? a.tolerance : verify_tolerance(split.train.precision);
  // The update is compared after a plain SGD step (see the note): AdamW's first step divides
  // each gradient by its own magnitude, which turns the rounding of parameters whose exact
  // gradient is zero into steps of about lr, in either run.
  const std::string optimizer = split.train.optimizer;
  split.train.optimizer = "sgd";
  split.train.momentum = 0;
  split.train.weight_decay = 0;  // the step is then the clipped gradient alone
  // A constant unit rate (gradients do not depend on it): the step reads as the clipped gradient.
  split.train.lr = 1;
  split.train.lr_scaling = "none";
  split.train.schedule = "constant";
  split.train.warmup_steps = 0;
  RunConfig whole = split;
  const int64_t k = split.train.grad_accum_steps, b = split.train.micro_batch_size;
  // Under mpirun: N ranks of K x B (the data-parallel path, gradients summed over ranks)
  // against one batch of N*K*B that each rank computes alone.
  const int ranks = world().size();
  if (ranks > 1 && a.mean_of_means)
    throw ConfigError("verify --mean-of-means runs in one process; start it without mpirun");
  if (ranks > 1 && split.dist.zero == 1)
    throw ConfigError("verify compares whole gradients, and under dist.zero=1 each rank holds the sums of its shard "
                      "only; verify with dist.zero=0 (ZeRO-1 changes where the update runs, not the gradients)");
  whole.train.micro_batch_size = b * k * ranks;
  whole.train.grad_accum_steps = 1;
  RunConfig wrong = split;
  wrong.train.grad_accum_steps = 1;
  fmt::print("verify: {}{} micro-batch{} of {} against one batch of {} ({}){}\n",
             ranks > 1 ? fmt::format("{} ranks x ", ranks) : "", k, k == 1 ? "" : "es", b, k * b * ranks,
             split.train.precision,
             a.mean_of_means ? ", accumulated as the mean of micro-batch means" : "");
  fmt::print("  dropout as in training: a sample's masks are keyed by its index in the run, so they do not depend "
             "on the micro-batch it is in\n");

  SingleProcess alone;
  auto ja = make_job(a.mean_of_means ? wrong : split), jb = make_job(whole, alone);
  StepResult ra = a.mean_of_means ? mean_of_micro_means(*ja, k) : ja->trainer->compute_gradients();
  StepResult rb = jb->trainer->compute_gradients();
  if (rb.tokens == 0)
    throw ConfigError(fmt::format("verify: the window of {} samples has no target tokens (every completion "
                                  "lies beyond model.block_size?): there is nothing to compare",
                                  k * b));
  if (!(rb.lr > 0))
    throw ConfigError(fmt::format("verify: the learning rate of the first step is {} (train.lr, "
                                  "train.warmup_steps): the step cannot be compared in units of it",
                                  rb.lr));
  auto grad = [](const Tensor& p) { return p.grad(); };
  const Comparison g = compare(snapshot(*ja->model, grad), snapshot(*jb->model, grad), 1e-3);
  // The step itself: the trained weights are set to zero once the gradients exist (SGD
  // without weight decay does not read them), so what the step writes is -lr * (clipped
  // gradient) with no rounding of w_before + step hiding a small tensor's step.
  auto step = [](Job& j, StepResult& r) {
    for (const ParamGroup& p : j.optimizer->params())
      if (p.param.grad().defined()) backend_for(p.param.device()).fill(p.param, 0.0f);
    j.trainer->apply_gradients(r);
    return snapshot(*j.model, [](const Tensor& p) { return p.grad().defined() ? p : Tensor(); });
  };
  const Comparison s = compare(step(*ja, ra), step(*jb, rb), 1e-3);

  fmt::print("  loss per target token: {:.6f} (K x B) vs {:.6f} (K*B), {} target tokens\n", ra.loss, rb.loss,
             rb.tokens);
  fmt::print("  gradients, per tensor: max relative error {:.3e} (worst: {})\n", g.worst, g.worst_name);
  fmt::print("  update of one SGD step (lr {:.3g}, no weight decay, clipping {}): max relative error {:.3e} "
             "(worst: {})\n",
             rb.lr, split.train.grad_clip > 0 ? fmt::format("at {}", split.train.grad_clip) : "off", s.worst,
             s.worst_name);
  if (optimizer != "sgd")
    fmt::print("  ({} itself is not stepped: its first step divides by |g| and amplifies rounding; the "
               "gradients it would receive are those compared above)\n",
               optimizer);
  const bool ok = g.worst <= tolerance && s.worst <= tolerance && ra.tokens == rb.tokens;
  fmt::print("{} (tolerance {:.1e} for {})\n",
             ok ? "PASS: the accumulated update equals the large-batch update"
                : "FAIL: accumulation does not reproduce the large batch",
             tolerance, split.train.precision);
  return ok ? 0 : 1;
}

}  // namespace bb
