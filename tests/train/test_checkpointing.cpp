// Activation checkpointing changes memory, never results: gradients with every policy are
// bit-identical to those without, with dropout on (so the replay must draw the same masks),
// for GPT-2 and for Llama (whose selective policy recomputes RMSNorm and SwiGLU's product),
// and checkpointing lowers the activation peak.
#include <gtest/gtest.h>

#include <cstring>

#include "autograd/backward.h"
#include "core/allocator.h"
#include "core/error.h"
#include "models/llama.h"
#include "tiny_job.h"

namespace bb::test {
namespace {

struct Grads {
  std::vector<std::vector<float>> values;
  int64_t activation_peak = 0;
};

std::unique_ptr<CausalLM> tiny_model(bool llama) {
  if (llama)
    return std::make_unique<Llama>(LlamaConfig{.hidden_size = 32, .intermediate_size = 88, .num_hidden_layers = 3,
                                               .num_attention_heads = 4, .num_key_value_heads = 2,
                                               .vocab_size = 50, .max_position_embeddings = 16},
                                   11);
  GPT2Config cfg = tiny_config();
  cfg.n_layer = 3;
  cfg.dropout = 0.1f;
  return std::make_unique<GPT2>(cfg, 11);
}

Grads run(const std::string& policy, DType compute = DType::F32, bool llama = false) {
  std::unique_ptr<CausalLM> owner = tiny_model(llama);
  CausalLM& model = *owner;
  model.set_checkpointing(CheckpointPolicy::parse(policy));
  TokenWindows data(token_stream(3000, 12), 16, 5, "stream");
  Batch b = data.batch(0, 4);
  Context ctx{.compute = compute, .training = true, .seed = 9, .step = 2, .micro = 1};
  Allocator::of(Device::CPU).reset_peaks();
  const int64_t before = Allocator::of(Device::CPU).stats().live[int(Category::Activations)];
  int64_t n = 0;
  Tensor loss = model.loss(b.tokens, b.targets, ctx, &n);
  backward(loss);
  Grads g;
  g.activation_peak = Allocator::of(Device::CPU).stats().peak[int(Category::Activations)] - before;
  for (auto& [name, p] : model.named_parameters()) g.values.push_back(p.grad().to_floats());
  return g;
}

TEST(Checkpointing, EveryPolicyGivesBitIdenticalGradients) {
  Grads base = run("none");
  for (const char* policy : {"full", "every:2", "selective"}) {
    Grads g = run(policy);
    ASSERT_EQ(g.values.size(), base.values.size());
    for (size_t i = 0; i < g.values.size(); ++i)
      EXPECT_EQ(0, std::memcmp(g.values[i].data(), base.values[i].data(), g.values[i].size() * 4))
          << policy << " parameter " << i;
  }
}

TEST(Checkpointing, Bf16GradientsAreBitIdenticalToo) {
  Grads base = run("none", DType::BF16);
  Grads g = run("full", DType::BF16);
  for (size_t i = 0; i < g.values.size(); ++i)
    EXPECT_EQ(0, std::memcmp(g.values[i].data(), base.values[i].data(), g.values[i].size() * 4)) << i;
}

TEST(Checkpointing, LowersTheActivationPeak) {
  const int64_t none = run("none").activation_peak;
  const int64_t selective = run("selective").activation_peak;
  const int64_t full = run("full").activation_peak;
  EXPECT_LT(selective, none);
  EXPECT_LT(full, selective);
}

TEST(Checkpointing, LlamaEveryPolicyGivesBitIdenticalGradients) {
  for (DType compute : {DType::F32, DType::BF16}) {
    Grads base = run("none", compute, true);
    for (const char* policy : {"full", "every:2", "selective"}) {
      Grads g = run(policy, compute, true);
      ASSERT_EQ(g.values.size(), base.values.size());
      for (size_t i = 0; i < g.values.size(); ++i)
        EXPECT_EQ(0, std::memcmp(g.values[i].data(), base.values[i].data(), g.values[i].size() * 4))
            << policy << " " << dtype_name(compute) << " parameter " << i;
    }
  }
}

TEST(Checkpointing, LlamaSelectiveLowersTheActivationPeak) {
  const int64_t none = run("none", DType::F32, true).activation_peak;
  const int64_t selective = run("selective", DType::F32, true).activation_peak;
  const int64_t full = run("full", DType::F32, true).activation_peak;
  EXPECT_LT(selective, none);
  EXPECT_LT(full, selective);
}

TEST(Checkpointing, UnknownPolicyNamesTheKey) {
  try {
    CheckpointPolicy::parse("sometimes");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("train.checkpointing"), std::string::npos);
  }
  EXPECT_THROW(CheckpointPolicy::parse("every:0"), ConfigError);
}

}  // namespace
}  // namespace bb::test
