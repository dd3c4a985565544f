// The promise: K micro-batches of B give the gradients and weights of one batch of K*B, with
// fixed windows, with padded documents of very different lengths, and for a partial last
// window. Tolerance: 1e-5 relative (max abs difference over max magnitude, per tensor):
// float rounding of sums taken in a different order. Several steps run with SGD, whose
// update is linear in the gradient; with AdamW the gradients of the first step are checked,
// not the weights, because AdamW turns
// the rounding noise of gradients that are zero in exact arithmetic (the key bias of
// attention) into updates of full size: docs/notes/gradient-accumulation.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/grad_mode.h"
#include "tiny_job.h"

namespace bb::test {
namespace {

constexpr double kTol = 1e-5;

void expect_same_grads(GPT2& a, GPT2& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    ASSERT_TRUE(pa[i].second.grad().defined()) << pa[i].first;
    EXPECT_LT(rel_error(pa[i].second.grad(), pb[i].second.grad()), kTol) << pa[i].first;
  }
}

void expect_same_weights(GPT2& a, GPT2& b, double tol) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_LT(rel_error(pa[i].second, pb[i].second), tol) << pa[i].first;
}

// Runs `steps` windows on both and checks gradients at every step and weights at the end.
void check_equivalence(const Dataset& data, int64_t b, int64_t k, int64_t steps, bool sgd) {
  TinyRun split(data, b, k, 1.0f, Precision::kFP32, 0.0f, sgd);
  TinyRun whole(data, b * k, 1, 1.0f, Precision::kFP32, 0.0f, sgd);
  for (int64_t s = 0; s < steps; ++s) {
    StepResult ra = split.trainer.compute_gradients();
    StepResult rb = whole.trainer.compute_gradients();
    EXPECT_EQ(ra.tokens, rb.tokens);
    EXPECT_NEAR(ra.loss, rb.loss, 1e-5 * std::abs(rb.loss));
    SCOPED_TRACE("step " + std::to_string(s));
    expect_same_grads(split.model, whole.model);
    split.trainer.apply_gradients(ra);
    whole.trainer.apply_gradients(rb);
  }
  if (sgd) expect_same_weights(split.model, whole.model, kTol);
}

TEST(Accumulation, FixedWindowsMatchOneLargeBatch) {
  TokenWindows data(token_stream(4000, 1), 16, 5, "stream");
  check_equivalence(data, 2, 4, 4, /*sgd=*/true);
  check_equivalence(data, 2, 4, 1, /*sgd=*/false);
}

TEST(Accumulation, PaddedDocumentsMatchOneLargeBatch) {
  Documents data(documents(64, 2), 16, 5, 0);
  // The case is only telling if micro-batches carry different numbers of target tokens.
  std::vector<int64_t> counts;
  for (int i = 0; i < 4; ++i) counts.push_back(data.batch(i * 2, 2).target_count);
  EXPECT_NE(*std::min_element(counts.begin(), counts.end()), *std::max_element(counts.begin(), counts.end()));
  check_equivalence(data, 2, 4, 4, /*sgd=*/true);
  check_equivalence(data, 2, 4, 1, /*sgd=*/false);
}

TEST(Accumulation, NaiveMeanOfMicroBatchMeansWouldDiffer) {
  // Guards the test above: averaging per-micro-batch means is not the large-batch mean here.
  Documents data(documents(64, 2), 16, 5, 0);
  GPT2 model(tiny_config(), 7);
  NoGradGuard ng;
  double sum = 0, mean_of_means = 0;
  int64_t total = 0;
  for (int i = 0; i < 4; ++i) {
    Batch b = data.batch(i * 2, 2);
    int64_t n = 0;
    double l = model.loss(b.tokens, b.targets, Context{}, &n).item();
    sum += l;
    total += n;
    mean_of_means += l / n / 4;
  }
  EXPECT_GT(std::abs(sum / total - mean_of_means), 1e-4);
}

TEST(Accumulation, PartialLastWindowIsNormalisedByItsOwnCount) {
  Documents data(documents(64, 3), 16, 5, 0);
  TinyRun split(data, 4, 4, 1.0f, Precision::kFP32, 0.0f, true);
  TinyRun whole(data, 6, 1, 1.0f, Precision::kFP32, 0.0f, true);
  StepResult ra = split.trainer.compute_gradients(6);  // micro-batches of 4 and 2
  StepResult rb = whole.trainer.compute_gradients(6);
  EXPECT_EQ(ra.samples, 6);
  EXPECT_EQ(ra.tokens, rb.tokens);
  expect_same_grads(split.model, whole.model);
  split.trainer.apply_gradients(ra);
  whole.trainer.apply_gradients(rb);
  expect_same_weights(split.model, whole.model, kTol);
}

TEST(Accumulation, GradientsAreF32WhateverTheComputeDtype) {
  TokenWindows data(token_stream(2000, 4), 16, 5, "stream");
  TinyRun run(data, 2, 2, 1.0f, Precision::kBF16);
  run.trainer.compute_gradients();
  for (auto& [name, p] : run.model.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_EQ(p.grad().dtype(), DType::F32) << name;
    EXPECT_EQ(p.grad().category(), Category::Gradients) << name;
  }
}

// An optimizer that records how often it steps and the gradient norm it sees.
struct Recorder : Optimizer {
  using Optimizer::Optimizer;
  std::vector<float> norms, lrs;
  void step(float lr) override {
    ++steps_;
    double s = 0;
    for (auto& p : params_)
      for (float g : p.param.grad().to_floats()) s += double(g) * g;
    norms.push_back(static_cast<float>(std::sqrt(s)));
    lrs.push_back(lr);
  }
  std::vector<StateSlot> slots() override { return {}; }
};

TEST(Accumulation, ScheduleAndClippingHappenOncePerOptimizerStep) {
  TokenWindows data(token_stream(4000, 5), 16, 5, "stream");
  GPT2 model(tiny_config(), 7);
  Recorder opt(default_param_groups(model.named_parameters()));
  SingleProcess comm;
  Schedule sched{.kind = "cosine", .lr = 1.0f, .warmup_steps = 4, .total_steps = 8};
  const float clip = 1e-3f;  // far below the real norm, so every step clips
  Trainer t(lm_loss(model), opt, data, sched, TrainerOptions{.micro_batch = 2, .grad_accum = 4, .grad_clip = clip}, comm);
  for (int s = 0; s < 3; ++s) {
    StepResult r = t.step();
    EXPECT_GT(r.grad_norm, clip);
  }
  ASSERT_EQ(opt.steps(), 3);  // one update per window of 4 micro-batches
  for (int s = 0; s < 3; ++s) {
    EXPECT_FLOAT_EQ(opt.lrs[s], sched.lr_at(s));  // warmup advanced per step, not per micro-batch
    EXPECT_NEAR(opt.norms[s], clip, 1e-6);         // clipped after the whole window
  }
}

TEST(Accumulation, GradientsAreZeroAfterTheStep) {
  TokenWindows data(token_stream(2000, 6), 16, 5, "stream");
  TinyRun run(data, 2, 2);
  run.trainer.step();
  for (auto& [name, p] : run.model.named_parameters())
    for (float g : p.grad().to_floats()) ASSERT_EQ(g, 0.0f) << name;
}

}  // namespace
}  // namespace bb::test
