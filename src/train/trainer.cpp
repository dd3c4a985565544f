// The accumulation loop; see docs/notes/one-step.md for the order of the boundary.
#include "train/trainer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "autograd/backward.h"
#include "backend/backend.h"
#include "backend/profile.h"
#include "core/error.h"
#include "core/grad_mode.h"

namespace bb {

Trainer::Trainer(LossFn loss, Optimizer& opt, const Dataset& data, Schedule schedule,
                 TrainerOptions o, Communicator& comm)
    : loss_(std::move(loss)), opt_(opt), data_(data), schedule_(schedule), opt_o_(o), comm_(comm),
      scaler_(o.precision == Precision::kFP16 ? LossScaler(LossScalerOptions{}) : LossScaler()) {
  if (o.micro_batch <= 0) throw ConfigError("train.micro_batch_size must be positive");
  if (o.grad_accum <= 0) throw ConfigError("train.grad_accum_steps must be positive");
  if (comm.size() > 1) {
    if (o.sample_slots <= 0) throw Error("data parallel training needs the samples' slot count (TrainerOptions)");
    std::vector<Tensor> params;
    std::vector<int64_t> numels;
    for (const ParamGroup& p : opt.params()) {
      params.push_back(p.param);
      numels.push_back(p.param.numel());
    }
    // The optimizer must update exactly the elements whose sums this rank will hold.
    const auto pieces = zero_pieces(numels, o.bucket_bytes, comm.rank(), comm.size());
    for (size_t i = 0; i < pieces.size(); ++i) {
      const ParamGroup& g = opt.params()[i];
      const bool matches = o.zero ? g.offset == pieces[i].offset && g.updated() == pieces[i].length : g.length < 0;
      if (!matches)
        throw Error(fmt::format("the optimizer's range of '{}' is not the one {} needs (make_optimizer with the "
                                "ranks)", g.name, o.zero ? "ZeRO-1" : "plain data parallel"));
    }
    sync_ = std::make_unique<GradSync>(comm, std::move(params), o.bucket_bytes, o.zero);
  }
}

StepResult Trainer::step(int64_t samples) {
  StepResult r = compute_gradients(samples);
  apply_gradients(r);
  return r;
}

StepResult Trainer::compute_gradients(int64_t samples) {
  StepResult r;
  if (samples <= 0) samples = window_size();
  r.lr = schedule_.lr_at(steps_done());      // the schedule advances once per step
  double loss_sum = 0;
  accumulate_window(samples, r, loss_sum);   // grads += d(token-loss sum * scale)
  r.loss = r.tokens > 0 ? loss_sum / static_cast<double>(r.tokens) : 0.0;
  require_finite_loss(r);                    // fp32/bf16; fp16's scaler skips such windows
  finite_ = finish_gradients(r.tokens);      // sync, / count, unscale, overflow check
  return r;
}

void Trainer::require_finite_loss(const StepResult& r) const {
  // Without a loss scaler nothing would stop a nan or inf loss from reaching the weights and
  // then the saved model; the weights are still those of the last step here.
  if (scaler_.enabled() || std::isfinite(r.loss)) return;
  throw Error(fmt::format("step {}: the training loss is {} in {}; stopped before the update, nothing saved "
                          "from this step (a lower train.lr, or train.grad_clip, may help)",
                          steps_done() + 1, std::isnan(r.loss) ? "nan" : r.loss > 0 ? "inf" : "-inf",
                          precision_name(opt_o_.precision)));
}

void Trainer::apply_gradients(StepResult& r) {
  // A window without target tokens (say, every completion past block_size) has nothing to
  // learn from: AdamW would still decay and move the weights, so it is skipped like an overflow.
  r.skipped = !finite_ || r.tokens == 0;
  PhaseScope phase(Phase::kOptimizer);
  if (!r.skipped) {
    r.grad_norm = clip_gradients();
    opt_.step(r.lr);
    if (opt_o_.zero && sync_) sync_->gather_params();  // each rank updated its shard only
  } else {
    ++skipped_;                              // weights and optimizer state untouched
  }
  if (r.tokens > 0) scaler_.update(!finite_);
  r.loss_scale = scaler_.scale();
  opt_.zero_grad();
  if (window_end_) window_end_();
  r.step = steps_done();
}

void Trainer::accumulate_window(int64_t samples, StepResult& r, double& loss_sum) {
  // This rank's share of the window's samples (global indices from cursor_).
  const int64_t share = opt_o_.grad_accum * opt_o_.micro_batch;
  const int64_t first = std::min(samples, comm_.rank() * share);
  const int64_t last = std::min(samples, first + share);
  // The backward seed carries the loss scale and a power of two near 1 / (target slots in
  // the window), fixed for the whole window and equal on every rank: gradients of a token
  // SUM then have the magnitude of a mean's, which keeps fp16 inside its range, and a power
  // of two scales exactly. finish_gradients divides both out again. No pass multiplies the
  // loss itself.
  const int64_t micro_count = (samples + opt_o_.micro_batch - 1) / opt_o_.micro_batch;
  auto set_prescale = [&](int64_t slots) {
    prescale_ = std::ldexp(1.0f, -static_cast<int>(std::ceil(std::log2(double(std::max<int64_t>(1, slots))))));
  };
  if (opt_o_.sample_slots > 0)
    set_prescale(opt_o_.sample_slots * std::min(opt_o_.micro_batch, samples) * micro_count);
  int64_t micro = first / opt_o_.micro_batch;  // the micro-batch's index in the whole window
  for (int64_t done = first; done < last; done += opt_o_.micro_batch, ++micro) {
    const int64_t n = std::min(opt_o_.micro_batch, last - done);
    Batch batch = [&] {
      PhaseScope phase(Phase::kData);
      return data_.batch(cursor_ + done, n);
    }();
    Context ctx{.compute = compute_dtype(opt_o_.precision), .training = true,
                .dropout = opt_o_.dropout, .seed = opt_o_.seed,
                .step = static_cast<uint64_t>(steps_done()), .micro = static_cast<uint64_t>(micro),
                .sample0 = static_cast<uint64_t>(cursor_ + done), .rows = n};
    if (opt_o_.sample_slots <= 0 && done == first) set_prescale(batch.tokens.numel() * micro_count);
    ctx.grad_scale = scaler_.scale() * prescale_;
    int64_t count = 0;
    Tensor loss = [&] {
      PhaseScope phase(Phase::kForward);
      return loss_(batch, ctx, &count);
    }();
    {
      PhaseScope phase(Phase::kBackward);
      const Tensor seed = Tensor::full(Shape{}, ctx.grad_scale, DType::F32, loss.device());
      // The window's last micro-batch sends each bucket of gradients as it completes.
      if (sync_ && opt_o_.overlap && done + n >= last)
        backward(loss, seed, [this](const TensorImpl& leaf) { sync_->leaf_done(leaf); });
      else
        backward(loss, seed);
    }
    // On the meta device (the planner's dry run) there are no values to read.
    if (!loss.is_meta()) loss_sum += loss.item();
    r.tokens += count;
    r.samples += n;
  }
  cursor_ += samples;
  if (comm_.size() > 1) {
    // One small sum for the window's figures, queued behind the gradient buckets.
    double totals[3] = {loss_sum, double(r.tokens), double(r.samples)};
    comm_.allreduce_sum(totals, 3);
    loss_sum = totals[0];
    r.tokens = static_cast<int64_t>(totals[1]);
    r.samples = static_cast<int64_t>(totals[2]);
  }
}

bool Trainer::finish_gradients(int64_t tokens) {
  // The only place the loss is normalised: by the window's target tokens over all ranks,
  // folded with the loss scale into one pass over the gradients.
  PhaseScope phase(Phase::kGradients);
  const float inv =
      tokens > 0 ? 1.0f / (static_cast<float>(tokens) * scaler_.scale() * prescale_) : 0.0f;
  if (sync_) sync_->finish();
  scale_grads(opt_.params(), inv);  // under ZeRO-1, this rank's pieces: the rest is partial sums
  if (!scaler_.enabled()) return true;
  int64_t overflow = 0;
  for (const ParamGroup& p : opt_.params()) {
    Tensor g = p.param.grad();
    if (g.defined() && p.updated() > 0 && backend_for(g.device()).has_nonfinite(p.part(g))) {
      overflow = 1;
      break;
    }
  }
  // Plain data parallel: every rank holds the same sums, so the verdicts agree already.
  if (opt_o_.zero) comm_.allreduce_sum(&overflow, 1);
  return overflow == 0;
}

float Trainer::clip_gradients() {
  if (!opt_o_.zero) return clip_grad_norm(opt_.params(), opt_o_.grad_clip);
  // Each rank holds the summed gradients of its shard only: the global norm is the sum of
  // every rank's squares.
  double squares = grad_sum_squares(opt_.params());
  comm_.allreduce_sum(&squares, 1);
  const float norm = static_cast<float>(std::sqrt(squares));
  const float coef = clip_coefficient(norm, opt_o_.grad_clip);
  if (coef != 1.0f) scale_grads(opt_.params(), coef);
  return norm;
}

void Trainer::restore(int64_t cursor, int64_t skipped, float scale, int64_t clean_steps) {
  cursor_ = cursor;
  skipped_ = skipped;
  scaler_.restore(scale, clean_steps);
}

}  // namespace bb
