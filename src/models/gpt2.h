// GPT-2: learned positions, pre-LayerNorm blocks of causal self-attention and a GELU MLP,
// a tied LM head. Parameter names and layouts are Hugging Face's (Conv1D weights stored
// (in, out)), so weights load from and save to the Hub's files as they are.
#pragma once
#include <memory>
#include <vector>

#include "models/causal_lm.h"
#include "nn/context.h"
#include "nn/layers.h"

namespace bb {

struct GPT2Config {
  int64_t n_layer = 6;
  int64_t n_head = 6;
  int64_t n_embd = 384;
  int64_t block_size = 256;  // n_positions
  int64_t vocab_size = 256;
  float dropout = 0.0f;      // resid_pdrop and embd_pdrop (attention-probability dropout is
                             // not applied: the fused attention never forms probabilities)
  float layer_norm_epsilon = 1e-5f;
  void validate() const;     // throws ConfigError naming the field
};

class GPT2Block : public Module {
 public:
  GPT2Block(const GPT2Config& c, int index, Device device);
  // x (B, T, C) -> (B, T, C). `selective` recomputes the norms and GELU in backward
  // instead of saving their outputs (same values and gradients). With a cache, k and v of x
  // are appended to slot `index` and attention runs over everything cached; `pos` is the
  // position of x's first token (0: a whole prompt, else one token to decode).
  Tensor forward(const Tensor& x, const Context& ctx, bool selective = false, KVCache* cache = nullptr,
                 int64_t pos = 0) const;

 private:
  GPT2Config cfg_;
  int index_;
  std::shared_ptr<LayerNorm> ln_1_, ln_2_;
  std::shared_ptr<Linear> c_attn_, attn_proj_, c_fc_, mlp_proj_;
};

class GPT2 : public CausalLM {
 public:
  // Weights initialised as GPT-2's reference code does, from `seed`.
  GPT2(const GPT2Config& c, uint64_t seed, Device device = Device::CPU);

  const GPT2Config& config() const { return cfg_; }
  // tokens (B, T) i64 -> final hidden states (B, T, C), after ln_f. With a cache the tokens
  // sit at positions cache->length() onwards and their keys and values are appended.
  Tensor hidden(const Tensor& tokens, const Context& ctx, KVCache* cache = nullptr) const;
  // Sum of cross-entropy over targets (B, T) that are not `ignore_index` (f32 scalar); the
  // number of counted targets goes to *count. Never holds all (B*T, V) logits.
  Tensor loss(const Tensor& tokens, const Tensor& targets, const Context& ctx, int64_t* count,
              int64_t ignore_index = -100) const override;
  // Logits (B, T, V) of the tied head, for generation and evaluation.
  Tensor logits(const Tensor& tokens, const Context& ctx) const override;
  Tensor logits_cached(const Tensor& tokens, KVCache& cache) const override;
  std::string model_type() const override { return "gpt2"; }
  int64_t vocab_size() const override { return cfg_.vocab_size; }
  int64_t max_positions() const override { return cfg_.block_size; }
  int64_t num_blocks() const override { return cfg_.n_layer; }
  const Module& block(int64_t i) const override { return *blocks_[i]; }

  const std::vector<std::shared_ptr<GPT2Block>>& blocks() const { return blocks_; }

 private:
  Tensor head(const Tensor& h) const;  // (B, T, C) -> logits (B, T, V) of the tied head
  GPT2Config cfg_;
  std::shared_ptr<Embedding> wte_, wpe_;
  std::vector<std::shared_ptr<GPT2Block>> blocks_;
  std::shared_ptr<LayerNorm> ln_f_;
};

}  // namespace bb
