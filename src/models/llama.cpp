// Llama forward passes (training, and decoding with a key/value cache) and initialisation.
#include "models/llama.h"

#include <fmt/format.h>

#include "core/error.h"

namespace bb {

void LlamaConfig::validate() const {
  require_positive(hidden_size, "hidden_size");
  require_positive(intermediate_size, "intermediate_size");
  require_positive(num_hidden_layers, "num_hidden_layers");
  require_positive(num_attention_heads, "num_attention_heads");
  require_positive(num_key_value_heads, "num_key_value_heads");
  require_positive(vocab_size, "vocab_size");
  require_positive(max_position_embeddings, "max_position_embeddings");
  if (hidden_size % num_attention_heads != 0 || head_dim() % 2 != 0)
    throw ConfigError(fmt::format("hidden_size ({}) must be num_attention_heads ({}) times an even head size",
                                  hidden_size, num_attention_heads));
  if (num_attention_heads % num_key_value_heads != 0)
    throw ConfigError(fmt::format("num_attention_heads ({}) must be a multiple of num_key_value_heads ({})",
                                  num_attention_heads, num_key_value_heads));
  if (!(rms_norm_eps > 0) || !(rope_theta > 0))
    throw ConfigError("rms_norm_eps and rope_theta must be positive");
}

LlamaBlock::LlamaBlock(const LlamaConfig& c, Device device) : cfg_(c) {
  const int64_t C = c.hidden_size, D = c.head_dim(), I = c.intermediate_size;
  auto lin = [&](int64_t in, int64_t out) {
    return std::make_shared<Linear>(LinearOptions{in, out, false, WeightLayout::kOutIn}, device);
  };
  auto attn = register_module("self_attn", std::make_shared<ModuleGroup>());
  q_proj_ = attn->register_module("q_proj", lin(C, c.num_attention_heads * D));
  k_proj_ = attn->register_module("k_proj", lin(C, c.num_key_value_heads * D));
  v_proj_ = attn->register_module("v_proj", lin(C, c.num_key_value_heads * D));
  o_proj_ = attn->register_module("o_proj", lin(c.num_attention_heads * D, C));
  auto mlp = register_module("mlp", std::make_shared<ModuleGroup>());
  gate_proj_ = mlp->register_module("gate_proj", lin(C, I));
  up_proj_ = mlp->register_module("up_proj", lin(C, I));
  down_proj_ = mlp->register_module("down_proj", lin(I, C));
  input_layernorm_ = register_module("input_layernorm", std::make_shared<RMSNorm>(C, c.rms_norm_eps, device));
  post_attention_layernorm_ =
      register_module("post_attention_layernorm", std::make_shared<RMSNorm>(C, c.rms_norm_eps, device));
}

Tensor LlamaBlock::forward(const Tensor& x, const Context& ctx, int64_t pos, KVCache* cache,
                           int64_t layer, bool selective) const {
  const int64_t B = x.dim(0), T = x.dim(1), C = cfg_.hidden_size, D = cfg_.head_dim();
  const int64_t H = cfg_.num_attention_heads, Hkv = cfg_.num_key_value_heads;
  std::vector<Tensor> qkv;
  if (selective) {
    qkv = input_layernorm_->forward_linears(x, {q_proj_.get(), k_proj_.get(), v_proj_.get()}, ctx);
  } else {
    Tensor h = input_layernorm_->forward(x);
    qkv = {q_proj_->forward(h, ctx), k_proj_->forward(h, ctx), v_proj_->forward(h, ctx)};
  }
  Tensor q = reshape(qkv[0], {B, T, H, D});
  Tensor k = reshape(qkv[1], {B, T, Hkv, D});
  Tensor v = reshape(qkv[2], {B, T, Hkv, D});
  Tensor a;
  if (pos == 0) {  // the whole sequence at once: training, evaluation, a prompt
    q = rope(q, cfg_.rope_theta, ctx.positions);
    k = rope(k, cfg_.rope_theta, ctx.positions);
    if (cache) cache->append(layer, k, v);
    a = attention(q, k, v, true, ctx.positions);
  } else {  // one new token against the cache
    if (!cache || T != 1)
      throw ShapeError(fmt::format("llama: decoding at position {} wants one token and a cache, got {}", pos, x.desc()));
    q = rope_at(q, cfg_.rope_theta, pos);
    k = rope_at(k, cfg_.rope_theta, pos);
    cache->append(layer, k, v);
    a = cache->attend(layer, q);
  }
  Tensor r = add(x, o_proj_->forward(reshape(a, {B, T, C}), ctx));
  if (selective) {
    std::vector<Tensor> gu = post_attention_layernorm_->forward_linears(r, {gate_proj_.get(), up_proj_.get()}, ctx);
    return add(r, down_proj_->forward_swiglu(gu[0], gu[1], ctx));
  }
  Tensor m = post_attention_layernorm_->forward(r);
  Tensor g = mul(silu(gate_proj_->forward(m, ctx)), up_proj_->forward(m, ctx));  // SwiGLU
  return add(r, down_proj_->forward(g, ctx));
}

Llama::Llama(const LlamaConfig& c, uint64_t seed, Device device) : cfg_(c) {
  try {
    c.validate();
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("llama: {}", e.what()));
  }
  auto model = register_module("model", std::make_shared<ModuleGroup>());
  embed_tokens_ = model->register_module("embed_tokens", std::make_shared<Embedding>(c.vocab_size, c.hidden_size, device));
  auto layers = model->register_module("layers", std::make_shared<ModuleGroup>());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    layers_.push_back(layers->register_module(std::to_string(i), std::make_shared<LlamaBlock>(c, device)));
  norm_ = model->register_module("norm", std::make_shared<RMSNorm>(c.hidden_size, c.rms_norm_eps, device));
  if (!c.tie_word_embeddings)
    lm_head_ = register_module(
        "lm_head", std::make_shared<Linear>(LinearOptions{c.hidden_size, c.vocab_size, false, WeightLayout::kOutIn}, device));
  for (auto& [name, t] : named_parameters())
    if (t.ndim() == 2) init_normal(t, 0.02f, seed, name);
}

Tensor Llama::head_weight() const { return lm_head_ ? lm_head_->weight() : embed_tokens_->weight(); }

Tensor Llama::hidden(const Tensor& tokens, const Context& ctx, int64_t pos, KVCache* cache) const {
  if (tokens.ndim() != 2)
    throw ShapeError(fmt::format("llama: tokens must be (B, T), got {}", tokens.desc()));
  if (pos + tokens.dim(1) > cfg_.max_position_embeddings)
    throw ShapeError(fmt::format("llama: position {} is past max_position_embeddings {}",
                                 pos + tokens.dim(1), cfg_.max_position_embeddings));
  if (ctx.positions.defined() && (cache || ctx.positions.shape() != tokens.shape()))
    throw ShapeError(fmt::format("llama: positions {} of packed rows must match tokens {} (and fill no cache)",
                                 ctx.positions.desc(), tokens.desc()));
  Tensor x = cast(embed_tokens_->forward(tokens), ctx.compute);  // (B, T, C)
  const bool selective = checkpointing_.selective() && !cache;
  for (int64_t i = 0; i < static_cast<int64_t>(layers_.size()); ++i) {
    const LlamaBlock* block = layers_[i].get();
    x = run_block(i, x, ctx, cache != nullptr, [block, pos, cache, i, selective](const Tensor& in, const Context& c) {
      return block->forward(in, c, pos, cache, i, selective);
    });
  }
  return norm_->forward(x);
}

Tensor Llama::loss(const Tensor& tokens, const Tensor& targets, const Context& ctx, int64_t* count,
                   int64_t ignore_index) const {
  return linear_cross_entropy(hidden(tokens, ctx), head_weight(), targets, ignore_index, count, 0,
                              ctx.grad_scale);
}

Tensor Llama::logits(const Tensor& tokens, const Context& ctx) const { return head(hidden(tokens, ctx)); }

Tensor Llama::logits_cached(const Tensor& tokens, KVCache& cache) const {
  Tensor h = hidden(tokens, Context{}, cache.length(), &cache);
  return head(slice(h, 1, h.dim(1) - 1, 1));
}

Tensor Llama::head(const Tensor& h) const { return matmul(h, cast(head_weight(), h.dtype()), false, true); }

}  // namespace bb
