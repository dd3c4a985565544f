// What the trainer refuses to do silently: a nan or inf loss without a loss scaler (fp32,
// bf16) stops the run naming the step before the weights change; a window without a single
// target token is skipped (no optimizer step, no weight decay) and says so.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "ops/ops.h"
#include "tiny_job.h"

namespace bb::test {
namespace {

std::vector<float> weights(const GPT2& model) {
  std::vector<float> out;
  for (auto& [n, t] : model.named_parameters()) {
    auto v = t.to_floats();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

TEST(TrainerGuards, NonFiniteLossStopsNamingTheStep) {
  for (Precision p : {Precision::kFP32, Precision::kBF16}) {
    for (float bad : {NAN, INFINITY}) {
      TokenWindows data(token_stream(3000, 4), 16, 5, "stream");
      GPT2 model(tiny_config(), 7);
      AdamW opt(default_param_groups(model.named_parameters()), AdamWOptions{});
      SingleProcess comm;
      // The third window's second micro-batch turns the loss non-finite.
      LossFn loss = loss_spoiled_at(model, 2 * 2 + 2, bad);
      Trainer t(loss, opt, data, Schedule{.kind = "constant", .lr = 1e-3f},
                TrainerOptions{.micro_batch = 2, .grad_accum = 2, .precision = p}, comm);
      t.step();
      t.step();
      const std::vector<float> before = weights(model);
      try {
        t.step();
        FAIL() << "a non-finite loss trained on";
      } catch (const Error& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("step 3"), std::string::npos) << m;
        EXPECT_NE(m.find(precision_name(p)), std::string::npos) << m;
      }
      EXPECT_EQ(weights(model), before);  // stopped before the update
      EXPECT_EQ(opt.steps(), 2);
    }
  }
}

TEST(TrainerGuards, WindowWithoutTargetTokensIsSkipped) {
  TokenWindows data(token_stream(3000, 6), 16, 5, "stream");
  GPT2 model(tiny_config(), 7);
  AdamW opt(default_param_groups(model.named_parameters()), AdamWOptions{.weight_decay = 0.1f});
  SingleProcess comm;
  int64_t window = 0;
  // Window 2 has every target masked, as instruction data whose completions all lie beyond
  // block_size would.
  LossFn loss = [&](const Batch& b, const Context& ctx, int64_t* n) {
    if (window != 1) return model.loss(b.tokens, b.targets, ctx, n);
    Tensor masked = Tensor::from_ints(b.targets.shape(), std::vector<int64_t>(b.targets.numel(), kIgnoreIndex));
    return model.loss(b.tokens, masked, ctx, n, kIgnoreIndex);
  };
  Trainer t(loss, opt, data, Schedule{.kind = "constant", .lr = 1e-3f},
            TrainerOptions{.micro_batch = 2, .grad_accum = 2}, comm);
  EXPECT_FALSE(t.step().skipped);
  ++window;
  const std::vector<float> before = weights(model);
  StepResult r = t.step();
  EXPECT_TRUE(r.skipped);
  EXPECT_EQ(r.tokens, 0);
  EXPECT_EQ(weights(model), before);  // AdamW's decay and momentum would have moved them
  EXPECT_EQ(opt.steps(), 1);
  EXPECT_EQ(t.steps_done(), 2);
  ++window;
  EXPECT_FALSE(t.step().skipped);
  EXPECT_EQ(opt.steps(), 2);
}

// Batches of `inner` with every target masked.
struct NoTargets final : Dataset {
  explicit NoTargets(const Dataset& d) : inner(d) {}
  Batch batch(int64_t first, int64_t count) const override {
    Batch b = inner.batch(first, count);
    b.targets = Tensor::from_ints(b.targets.shape(), std::vector<int64_t>(b.targets.numel(), kIgnoreIndex));
    b.target_count = 0;
    return b;
  }
  const Dataset& inner;
};

TEST(TrainerGuards, EvaluatingNoTargetTokensIsRefused) {
  TokenWindows windows(token_stream(3000, 8), 16, 5, "stream");
  NoTargets data(windows);
  GPT2 model(tiny_config(), 7);
  try {
    evaluate(model, data, 2, 2, Precision::kFP32);
    FAIL() << "a mean over no tokens was returned";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("no tokens to evaluate"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bb::test
