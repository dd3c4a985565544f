// Generation: with the key/value cache, decoding of the GPT-2 and Llama fixtures gives exactly
// the tokens of uncached decoding (also once the window slides past max_positions), and the
// cached logits match the full forward's
// (1e-4 relative); top-p keeps the smallest set of likeliest tokens holding p of the mass.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "core/grad_mode.h"
#include "io/hf_model.h"
#include "../io/llm_fixtures.h"
#include "models/generate.h"
#include "models/llama.h"

namespace bb::test {
namespace {

class GenerateBoth : public ::testing::TestWithParam<const char*> {};

TEST_P(GenerateBoth, CachedGreedyEqualsUncachedGreedy) {
  auto model = load_causal_lm(llm_fixture(GetParam()));
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = 20;
  std::vector<int64_t> prompt = {5, 17, 3, 42};
  auto cached = generate_ids(*model, prompt, o, true);
  auto plain = generate_ids(*model, prompt, o, false);
  EXPECT_EQ(cached.size(), prompt.size() + 20);
  EXPECT_EQ(cached, plain);
}

TEST_P(GenerateBoth, SampledPastTheContextLimitEqualsUncached) {
  // The window slides once prompt + new tokens pass max_positions: the cached loop must hand
  // over to re-running the window with the same tokens and the same random stream.
  auto model = load_causal_lm(llm_fixture(GetParam()));
  SamplingOptions o;
  o.temperature = 0.9f;
  o.top_k = 20;
  o.seed = 7;
  const int64_t limit = model->max_positions();
  o.max_new_tokens = 6;
  std::vector<int64_t> prompt;
  for (int64_t i = 0; i < limit - 3; ++i) prompt.push_back((i * 37 + 11) % 100);
  auto cached = generate_ids(*model, prompt, o, true);
  auto plain = generate_ids(*model, prompt, o, false);
  EXPECT_EQ(cached.size(), prompt.size() + 6);
  EXPECT_EQ(cached, plain);
}

TEST_P(GenerateBoth, CachedLogitsMatchFullForward) {
  auto base = load_causal_lm(llm_fixture(GetParam()));
  const CausalLM& model = *base;
  NoGradGuard ng;
  std::vector<int64_t> seq = {1, 9, 33, 70, 2, 8, 15};
  Tensor full = model.logits(Tensor::from_ints(Shape{1, 7}, seq), Context{});
  KVCache cache(model.max_positions());
  Tensor prefill = model.logits_cached(Tensor::from_ints(Shape{1, 3}, {1, 9, 33}), cache);
  auto all = full.to_floats();
  ASSERT_EQ(prefill.shape(), (Shape{1, 1, 100}));  // only the prompt's last position
  EXPECT_LT(max_rel_error(prefill, Tensor::from_floats(Shape{1, 1, 100}, std::vector<float>(all.begin() + 200,
                                                                                            all.begin() + 300))),
            1e-4);
  for (int64_t t = 3; t < 7; ++t) {
    Tensor step = model.logits_cached(Tensor::from_ints(Shape{1, 1}, {seq[t]}), cache);
    std::vector<float> want(all.begin() + t * 100, all.begin() + (t + 1) * 100);
    EXPECT_LT(max_rel_error(step, Tensor::from_floats(Shape{1, 1, 100}, want)), 1e-4) << t;
  }
  EXPECT_EQ(cache.length(), 7);
}

INSTANTIATE_TEST_SUITE_P(Models, GenerateBoth, ::testing::Values("gpt2", "llama"));

TEST(Generate, TopPKeepsTheNucleus) {
  // Probabilities 0.5, 0.3, 0.2: top_p 0.6 keeps the first two, 0.4 only the first.
  std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  SamplingOptions o;
  o.temperature = 1;
  o.top_k = 0;
  o.top_p = 0.4f;
  uint64_t rng = 1;
  for (int i = 0; i < 50; ++i) EXPECT_EQ(sample_token(logits, o, rng), 0);
  o.top_p = 0.6f;
  std::set<int64_t> seen;
  for (int i = 0; i < 200; ++i) seen.insert(sample_token(logits, o, rng));
  EXPECT_EQ(seen, (std::set<int64_t>{0, 1}));
}

}  // namespace
}  // namespace bb::test
