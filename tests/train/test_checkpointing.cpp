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
#include "nn/lora.h"
#include "tiny_job.h"

namespace bb::test {
namespace {

struct Grads {
  std::vector<std::vector<float>> values;
  int64_t activation_peak = 0;
};

std::unique_ptr<CausalLM> tiny_model(bool llama, bool whole_blocks = false) {
  if (llama)  // a quantized base needs whole 32-value blocks of inputs (the MLP's down_proj)
    return std::make_unique<Llama>(LlamaConfig{.hidden_size = 32, .intermediate_size = whole_blocks ? 96 : 88,
                                               .num_hidden_layers = 3,
                                               .num_attention_heads = 4, .num_key_value_heads = 2,
                                               .vocab_size = 50, .max_position_embeddings = 16},
                                   11);
  GPT2Config cfg = tiny_config();
  cfg.n_layer = 3;
  cfg.dropout = 0.1f;
  return std::make_unique<GPT2>(cfg, 11);
}

Grads run(const std::string& policy, DType compute = DType::F32, bool llama = false, bool lora = false,
          DType base = DType::F32) {
  std::unique_ptr<CausalLM> owner = tiny_model(llama, is_block_quantized(base));
  CausalLM& model = *owner;
  if (lora) {
    // Every projection an adapter can sit on under each policy: after a norm (c_attn, c_fc,
    // q/k/v, gate/up), after an activation (mlp.c_proj) and plain (attn.c_proj, o_proj).
    LoraOptions o{.r = 4, .alpha = 8, .dropout = 0.1f, .seed = 4};
    o.base_dtype = base;
    o.targets = llama ? std::vector<std::string>{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj"}
                      : std::vector<std::string>{"c_attn", "c_fc", "c_proj"};
    apply_lora(model, o);
    // B starts at zero, which would leave A without gradient: give B values.
    for (auto& [name, p] : model.named_parameters())
      if (name.find("lora_B") != std::string::npos) {
        std::vector<float> v(p.numel());
        for (size_t i = 0; i < v.size(); ++i) v[i] = 0.01f * float(int(i % 7) - 3);
        backend_for(p.device()).cast(Tensor::from_floats(p.shape(), v), p);
      }
  }
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
  for (auto& [name, p] : model.named_parameters())
    if (p.grad().defined()) g.values.push_back(p.grad().to_floats());
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

// Under LoRA the embeddings are frozen, so block 0's input needs no gradient while its
// adapters do; and selective keeps the fused products for adapted layers. Every policy must
// still lower the peak, with the gradients of none: bit-identical for whole-block policies;
// for selective within rounding, since an adapted layer's input gradient is then the sum of
// two norm backwards (fused product, checkpointed adapter) rather than one.
void expect_policies_lower_the_peak_with_the_same_gradients(DType base) {
  for (bool llama : {false, true}) {
    const Grads none = run("none", DType::F32, llama, true, base);
    ASSERT_FALSE(none.values.empty());
    // every:3 wraps block 0 alone (3 layers): its peak drops only if block 0 is checkpointed.
    for (const char* policy : {"full", "every:2", "every:3", "selective"}) {
      const Grads g = run(policy, DType::F32, llama, true, base);
      EXPECT_LT(g.activation_peak, none.activation_peak) << policy << (llama ? " llama" : " gpt2");
      ASSERT_EQ(g.values.size(), none.values.size());
      for (size_t i = 0; i < g.values.size(); ++i) {
        if (std::string(policy) != "selective") {
          EXPECT_EQ(0, std::memcmp(g.values[i].data(), none.values[i].data(), g.values[i].size() * 4))
              << policy << " parameter " << i;
          continue;
        }
        double d = 0, m = 0;
        for (size_t e = 0; e < g.values[i].size(); ++e) {
          d = std::max(d, std::abs(double(g.values[i][e]) - none.values[i][e]));
          m = std::max(m, std::abs(double(none.values[i][e])));
        }
        EXPECT_LE(d, 1e-5 * m) << policy << " parameter " << i << (llama ? " llama" : " gpt2");
      }
    }
  }
}

TEST(Checkpointing, LoraEveryPolicyLowersThePeakWithTheSameGradients) {
  expect_policies_lower_the_peak_with_the_same_gradients(DType::F32);
}

// A q8_0 / q4_0 base has no fused kernels: its products keep nothing of their inputs and the
// adapters recompute theirs, so every policy still lowers the peak.
TEST(Checkpointing, LoraOnAQuantizedBaseEveryPolicyLowersThePeakWithTheSameGradients) {
  for (DType base : {DType::Q8_0, DType::Q4_0}) {
    SCOPED_TRACE(dtype_name(base));
    expect_policies_lower_the_peak_with_the_same_gradients(base);
  }
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
