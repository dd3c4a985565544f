// `bigbatch verify`: on the user's own model and data, one window as K micro-batches of B
// and as one batch of K*B, from the same weights: the gradients and the weights after the
// step must agree to float rounding.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "cli/commands.h"
#include "train/job.h"

namespace bb {
namespace {

// max |a - b| / max |b| over one tensor.
double relative_error(const Tensor& a, const Tensor& b) {
  std::vector<float> x = a.to_floats(), y = b.to_floats();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    diff = std::max(diff, std::abs(double(x[i]) - double(y[i])));
    scale = std::max(scale, std::abs(double(y[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

struct Worst {
  double error = 0;
  std::string name;
  void see(double e, const std::string& n) {
    if (e > error) {
      error = e;
      name = n;
    }
  }
};

}  // namespace

int run_verify(const VerifyArgs& a) {
  std::string config = a.config;
  std::vector<std::string> overrides = a.overrides;
  if (config.find('=') != std::string::npos) {
    overrides.insert(overrides.begin(), config);
    config.clear();
  }
  RunConfig split = load_run_config(config, overrides);
  if (split.model.dropout > 0) {
    fmt::print("note: dropout set to 0 for the check (masks depend on the micro-batch a sample is in)\n");
    split.model.dropout = 0;
  }
  RunConfig whole = split;
  whole.train.micro_batch_size = split.train.micro_batch_size * split.train.grad_accum_steps;
  whole.train.grad_accum_steps = 1;
  const int64_t k = split.train.grad_accum_steps, b = split.train.micro_batch_size;
  fmt::print("verify: {} micro-batches of {} against one batch of {} ({})\n", k, b, k * b, split.train.precision);

  auto ja = make_job(split), jb = make_job(whole);
  StepResult ra = ja->trainer->compute_gradients();
  StepResult rb = jb->trainer->compute_gradients();
  Worst grad, weight;
  auto pa = ja->model->named_parameters(), pb = jb->model->named_parameters();
  for (size_t i = 0; i < pa.size(); ++i)
    if (pa[i].second.grad().defined())
      grad.see(relative_error(pa[i].second.grad(), pb[i].second.grad()), pa[i].first);
  ja->trainer->apply_gradients(ra);
  jb->trainer->apply_gradients(rb);
  for (size_t i = 0; i < pa.size(); ++i) weight.see(relative_error(pa[i].second, pb[i].second), pa[i].first);

  fmt::print("  loss per token: {:.6f} (K x B) vs {:.6f} (K*B), {} target tokens\n", ra.loss, rb.loss, ra.tokens);
  fmt::print("  gradients: max relative error {:.3e} (worst: {})\n", grad.error, grad.name);
  fmt::print("  weights after one step: max relative error {:.3e} (worst: {})\n", weight.error, weight.name);
  const bool ok = grad.error <= a.tolerance && weight.error <= a.tolerance && ra.tokens == rb.tokens;
  fmt::print("{} (tolerance {:.1e})\n", ok ? "PASS: the accumulated update equals the large-batch update"
                                           : "FAIL: accumulation does not reproduce the large batch", a.tolerance);
  return ok ? 0 : 1;
}

}  // namespace bb
