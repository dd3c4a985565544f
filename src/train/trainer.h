// Trainer: the accumulation loop. One step() is one optimizer step over a window of K
// micro-batches, following docs/notes/one-step.md: losses are sums over target tokens,
// gradients accumulate with +=, and the window's token count (summed over ranks) divides
// the gradients once, at the window's end.
#pragma once
#include <functional>
#include <memory>

#include "data/dataset.h"
#include "dist/communicator.h"
#include "dist/grad_sync.h"
#include "nn/context.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "train/precision.h"

namespace bb {

// The sum of the loss over a batch's target tokens; writes how many counted to *count.
using LossFn = std::function<Tensor(const Batch& batch, const Context& ctx, int64_t* count)>;

struct TrainerOptions {
  int64_t micro_batch = 8;
  int64_t grad_accum = 1;      // K micro-batches per optimizer step
  float grad_clip = 1.0f;      // max global norm; 0 = no clipping
  Precision precision = Precision::kFP32;
  uint64_t seed = 0;
  bool dropout = true;         // false: every dropout site passes its input through (verify)
  // Target slots a sample can hold (block_size for language models, 1 for images). With the
  // window's sample count over all ranks it fixes the backward's power-of-two prescale, the
  // same on every rank. 0: taken from the first batch (one process only).
  int64_t sample_slots = 0;
  int64_t bucket_bytes = 25 << 20;  // data parallel: gradient bucket size (dist.bucket_mb)
  // Data parallel: buckets leave during the last backward (true), or all after it (the
  // benchmark's baseline that shows what the overlap hides).
  bool overlap = true;
  // ZeRO-1 (dist.zero=1): the optimizer's groups cover this rank's pieces (zero_pieces);
  // gradients are reduce-scattered, the norm and overflow verdict summed over ranks, and the
  // updated weights all-gathered.
  bool zero = false;
};

struct StepResult {
  int64_t step = 0;            // optimizer steps done after this one
  double loss = 0;             // mean loss per target token over the window
  int64_t tokens = 0;          // target tokens in the window (all ranks)
  int64_t samples = 0;
  float grad_norm = 0;         // before clipping
  float lr = 0;
  bool skipped = false;        // no update: fp16 overflow, or no target tokens (tokens == 0)
  float loss_scale = 1;
};

class Trainer {
 public:
  Trainer(LossFn loss, Optimizer& opt, const Dataset& data, Schedule schedule, TrainerOptions o,
          Communicator& comm);

  // One optimizer step over the next window; throws Error naming the step when the loss is
  // not finite without a loss scaler (fp32, bf16). `samples` limits the window (a partial last
  // window); by default it is ranks * grad_accum * micro_batch samples. Rank r reads the
  // window's samples [r*K*B, (r+1)*K*B), so N ranks read what one rank with N*K would.
  StepResult step(int64_t samples = 0);
  // The two halves of step(), for tools that look at the gradients in between (verify):
  // the window's gradients, synced and normalised; then clip, update, scaler and zero.
  StepResult compute_gradients(int64_t samples = 0);
  void apply_gradients(StepResult& r);

  int64_t steps_done() const { return opt_.steps() + skipped_; }
  int64_t samples_done() const { return cursor_; }  // over all ranks
  // Samples of a full window: ranks * grad_accum * micro_batch.
  int64_t window_size() const { return comm_.size() * opt_o_.grad_accum * opt_o_.micro_batch; }
  const LossScaler& scaler() const { return scaler_; }
  // Restores the position of a checkpoint (the optimizer restores its own state).
  void restore(int64_t cursor, int64_t skipped, float scale, int64_t clean_steps);
  int64_t skipped_steps() const { return skipped_; }
  // Runs once at the end of every window, after the update (BatchNorm merges the window's
  // statistics into its running statistics here).
  void on_window_end(std::function<void()> fn) { window_end_ = std::move(fn); }
  const TrainerOptions& options() const { return opt_o_; }
  Communicator& comm() const { return comm_; }
  void set_dropout(bool on) { opt_o_.dropout = on; }

 private:
  void accumulate_window(int64_t samples, StepResult& r, double& loss_sum);
  void require_finite_loss(const StepResult& r) const;  // fp32/bf16: throws naming the step
  bool finite_ = true;  // verdict of the last compute_gradients()
  float prescale_ = 1;  // power of two near 1 / (tokens in the window): see accumulate_window
  std::function<void()> window_end_;
  bool finish_gradients(int64_t tokens);  // sync, normalise, unscale, check; false = overflow
  float clip_gradients();                 // the global norm before clipping

  LossFn loss_;
  Optimizer& opt_;
  const Dataset& data_;
  Schedule schedule_;
  TrainerOptions opt_o_;
  Communicator& comm_;
  std::unique_ptr<GradSync> sync_;  // more than one rank
  LossScaler scaler_;
  int64_t cursor_ = 0;   // samples consumed by all ranks
  int64_t skipped_ = 0;  // windows skipped (overflow, or no target tokens)
};

}  // namespace bb
