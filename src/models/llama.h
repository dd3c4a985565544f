// Llama: RMSNorm pre-norm blocks of rotary causal self-attention with grouped key/value heads
// and a SwiGLU MLP, an untied or tied LM head. Parameter names and layouts are Hugging Face
// LlamaForCausalLM's (nn.Linear (out, in), no biases), so Hub checkpoints load as they are.
#pragma once
#include <memory>
#include <vector>

#include "models/causal_lm.h"
#include "models/kv_cache.h"
#include "nn/context.h"
#include "nn/layers.h"

namespace bb {

struct LlamaConfig {
  int64_t hidden_size = 256;
  int64_t intermediate_size = 688;
  int64_t num_hidden_layers = 4;
  int64_t num_attention_heads = 4;
  int64_t num_key_value_heads = 4;
  int64_t vocab_size = 257;
  int64_t max_position_embeddings = 256;
  float rms_norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  bool tie_word_embeddings = false;
  int64_t bos_token_id = -1, eos_token_id = -1;  // -1: none
  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  void validate() const;  // throws ConfigError naming the field
};

class LlamaBlock : public Module {
 public:
  LlamaBlock(const LlamaConfig& c, Device device);
  // x (B, T, C) -> (B, T, C); `pos` is the position of x's first token. With a cache, k and
  // v of x are appended to `layer` and attention runs over everything cached. `selective`
  // recomputes the norms and SwiGLU's product in backward instead of saving them (same values
  // and gradients).
  Tensor forward(const Tensor& x, const Context& ctx, int64_t pos = 0, KVCache* cache = nullptr,
                 int64_t layer = 0, bool selective = false) const;

 private:
  LlamaConfig cfg_;
  std::shared_ptr<RMSNorm> input_layernorm_, post_attention_layernorm_;
  std::shared_ptr<Linear> q_proj_, k_proj_, v_proj_, o_proj_, gate_proj_, up_proj_, down_proj_;
};

class Llama : public CausalLM {
 public:
  // Weights drawn N(0, 0.02) (Hugging Face's initializer_range), norms at one, from `seed`.
  Llama(const LlamaConfig& c, uint64_t seed, Device device = Device::CPU);

  const LlamaConfig& config() const { return cfg_; }
  // tokens (B, T) i64 -> final hidden states (B, T, C) after model.norm; `pos` and `cache`
  // as in LlamaBlock::forward.
  Tensor hidden(const Tensor& tokens, const Context& ctx, int64_t pos = 0, KVCache* cache = nullptr) const;
  Tensor loss(const Tensor& tokens, const Tensor& targets, const Context& ctx, int64_t* count,
              int64_t ignore_index = -100) const override;
  Tensor logits(const Tensor& tokens, const Context& ctx) const override;
  Tensor logits_cached(const Tensor& tokens, KVCache& cache) const override;
  std::string model_type() const override { return "llama"; }
  int64_t vocab_size() const override { return cfg_.vocab_size; }
  int64_t max_positions() const override { return cfg_.max_position_embeddings; }
  int64_t num_blocks() const override { return cfg_.num_hidden_layers; }
  const Module& block(int64_t i) const override { return *layers_[i]; }
  // The LM head's weight (V, C): lm_head, or embed_tokens when tied.
  Tensor head_weight() const;

 private:
  Tensor head(const Tensor& h) const;  // (B, T, C) -> logits (B, T, V)
  LlamaConfig cfg_;
  std::shared_ptr<Embedding> embed_tokens_;
  std::vector<std::shared_ptr<LlamaBlock>> layers_;
  std::shared_ptr<RMSNorm> norm_;
  std::shared_ptr<Linear> lm_head_;  // null when tied
};

}  // namespace bb
