// A tiny GPT-2 and in-memory data for trainer tests: small enough to run many steps in a
// test, big enough to have every kind of layer.
#pragma once
#include <memory>
#include <vector>

#include "data/dataset.h"
#include "models/gpt2.h"
#include "ops/ops.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "train/job.h"
#include "train/trainer.h"

namespace bb::test {

inline GPT2Config tiny_config() {
  return GPT2Config{.n_layer = 2, .n_head = 2, .n_embd = 32, .block_size = 16, .vocab_size = 50};
}

inline std::vector<int32_t> token_stream(int64_t n, uint64_t seed) {
  std::vector<int32_t> t(n);
  for (int64_t i = 0; i < n; ++i) t[i] = static_cast<int32_t>(mix64(seed + i) % 49);
  return t;
}

// Documents of lengths spread from 3 to 40 tokens, so micro-batches hold very different
// numbers of target tokens.
inline std::vector<std::vector<int32_t>> documents(int64_t count, uint64_t seed) {
  std::vector<std::vector<int32_t>> docs;
  for (int64_t d = 0; d < count; ++d) {
    int64_t len = 3 + static_cast<int64_t>(mix64(seed * 31 + d) % 38);
    std::vector<int32_t> doc(len);
    for (int64_t i = 0; i < len; ++i) doc[i] = static_cast<int32_t>(mix64(seed + d * 1000 + i) % 49);
    docs.push_back(doc);
  }
  return docs;
}

// Model, AdamW and trainer over `data`, all from the same seed.
// AdamW by default; SGD with momentum where a test needs updates linear in the gradients.
struct TinyRun {
  GPT2 model;
  std::unique_ptr<Optimizer> opt_ptr;
  Optimizer& opt;
  SingleProcess comm;
  Trainer trainer;
  TinyRun(const Dataset& data, int64_t micro, int64_t accum, float clip = 1.0f,
          Precision precision = Precision::kFP32, float dropout = 0.0f, bool sgd = false)
      : model(with_dropout(tiny_config(), dropout), 7),
        opt_ptr(sgd ? std::unique_ptr<Optimizer>(std::make_unique<SGD>(
                          default_param_groups(model.named_parameters()), SGDOptions{.momentum = 0.9f}))
                    : std::make_unique<AdamW>(default_param_groups(model.named_parameters()),
                                              AdamWOptions{.weight_decay = 0.1f})),
        opt(*opt_ptr),
        trainer(lm_loss(model), opt, data,
                Schedule{.kind = "cosine", .lr = 1e-2f, .warmup_steps = 2, .total_steps = 10},
                TrainerOptions{.micro_batch = micro, .grad_accum = accum, .grad_clip = clip,
                               .precision = precision, .seed = 3},
                comm) {}
  static GPT2Config with_dropout(GPT2Config c, float p) {
    c.dropout = p;
    return c;
  }
};

// The model's loss, multiplied by `bad` (inf or nan) at the `at`-th call, counting from 1: a
// micro-batch whose loss turns non-finite (an fp16 overflow, a diverging fp32 run).
inline LossFn loss_spoiled_at(const GPT2& model, int64_t at, float bad) {
  auto calls = std::make_shared<int64_t>(0);
  return [&model, calls, at, bad](const Batch& b, const Context& ctx, int64_t* n) {
    Tensor l = model.loss(b.tokens, b.targets, ctx, n);
    return ++*calls == at ? scale(l, bad) : l;
  };
}

// max |a - b| / max |b|
inline double rel_error(const Tensor& a, const Tensor& b) {
  auto x = a.to_floats(), y = b.to_floats();
  double d = 0, s = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    d = std::max(d, std::abs(double(x[i]) - y[i]));
    s = std::max(s, std::abs(double(y[i])));
  }
  return s > 0 ? d / s : d;
}

}  // namespace bb::test
