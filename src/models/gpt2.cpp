// GPT-2 forward passes and the reference initialisation.
#include "models/gpt2.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"

namespace bb {

void GPT2Config::validate() const {
  require_positive(n_layer, "model.n_layer");
  require_positive(n_head, "model.n_head");
  require_positive(n_embd, "model.n_embd");
  require_positive(block_size, "model.block_size");
  require_positive(vocab_size, "model.vocab_size");
  if (n_embd % n_head != 0)
    throw ConfigError(fmt::format("model.n_embd ({}) must be a multiple of model.n_head ({})",
                                  n_embd, n_head));
  if (!(dropout >= 0.0f && dropout < 1.0f))
    throw ConfigError(fmt::format("model.dropout must be in [0, 1), got {}", dropout));
}

GPT2Block::GPT2Block(const GPT2Config& c, int index, Device device) : cfg_(c), index_(index) {
  const int64_t C = c.n_embd;
  auto lin = [&](int64_t in, int64_t out) {
    return std::make_shared<Linear>(LinearOptions{in, out, true, WeightLayout::kInOut}, device);
  };
  ln_1_ = register_module("ln_1", std::make_shared<LayerNorm>(C, c.layer_norm_epsilon, device));
  // Hugging Face nests the attention and MLP projections one level down.
  auto attn = register_module("attn", std::make_shared<ModuleGroup>());
  c_attn_ = attn->register_module("c_attn", lin(C, 3 * C));
  attn_proj_ = attn->register_module("c_proj", lin(C, C));
  ln_2_ = register_module("ln_2", std::make_shared<LayerNorm>(C, c.layer_norm_epsilon, device));
  auto mlp = register_module("mlp", std::make_shared<ModuleGroup>());
  c_fc_ = mlp->register_module("c_fc", lin(C, 4 * C));
  mlp_proj_ = mlp->register_module("c_proj", lin(4 * C, C));
}

Tensor GPT2Block::forward(const Tensor& x, const Context& ctx, bool selective, KVCache* cache, int64_t pos) const {
  const int64_t B = x.dim(0), T = x.dim(1), C = cfg_.n_embd, H = cfg_.n_head;
  const uint64_t site = static_cast<uint64_t>(index_) * 2 + 1;
  Tensor qkv = selective ? ln_1_->forward_linear(x, *c_attn_, ctx)
                         : c_attn_->forward(ln_1_->forward(x), ctx);  // (B, T, 3C)
  std::vector<Tensor> parts = split(qkv, {C, C, C}, -1);
  Tensor q = reshape(parts[0], {B, T, H, C / H});
  Tensor k = reshape(parts[1], {B, T, H, C / H});
  Tensor v = reshape(parts[2], {B, T, H, C / H});
  Tensor a;
  if (pos == 0) {  // the whole sequence at once: training, a prompt
    if (cache) cache->append(index_, k, v);
    a = attention(q, k, v, true, ctx.positions);
  } else {  // one new token against the cache
    if (!cache || T != 1)
      throw ShapeError(fmt::format("gpt2: decoding at position {} wants one token and a cache, got {}", pos, x.desc()));
    cache->append(index_, k, v);
    a = cache->attend(index_, q);
  }
  a = reshape(a, {B, T, C});
  Tensor h = add(x, dropout(attn_proj_->forward(a, ctx), cfg_.dropout, ctx, site));
  Tensor f = selective ? ln_2_->forward_linear(h, *c_fc_, ctx) : c_fc_->forward(ln_2_->forward(h), ctx);
  Tensor m = selective ? mlp_proj_->forward_after(Activation::GeluTanh, f, ctx)
                       : mlp_proj_->forward(gelu(f), ctx);         // (B, T, C)
  return add(h, dropout(m, cfg_.dropout, ctx, site + 1));
}

GPT2::GPT2(const GPT2Config& c, uint64_t seed, Device device) : cfg_(c) {
  c.validate();
  wte_ = register_module("wte", std::make_shared<Embedding>(c.vocab_size, c.n_embd, device));
  wpe_ = register_module("wpe", std::make_shared<Embedding>(c.block_size, c.n_embd, device));
  auto h = register_module("h", std::make_shared<ModuleGroup>());
  for (int i = 0; i < c.n_layer; ++i)
    blocks_.push_back(h->register_module(std::to_string(i), std::make_shared<GPT2Block>(c, i, device)));
  ln_f_ = register_module("ln_f", std::make_shared<LayerNorm>(c.n_embd, c.layer_norm_epsilon, device));
  // GPT-2's initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 n_layer).
  const float proj_std = 0.02f / std::sqrt(2.0f * static_cast<float>(c.n_layer));
  for (auto& [name, t] : named_parameters()) {
    bool is_weight = name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0;
    bool is_norm = name.find("ln_") != std::string::npos;
    if (!is_weight || is_norm) continue;
    bool is_proj = name.find("c_proj") != std::string::npos;
    init_normal(t, is_proj ? proj_std : 0.02f, seed, name);
  }
}

Tensor GPT2::hidden(const Tensor& tokens, const Context& ctx, KVCache* cache) const {
  if (tokens.ndim() != 2)
    throw ShapeError(fmt::format("gpt2: tokens must be (B, T), got {}", tokens.desc()));
  const int64_t T = tokens.dim(1), start = cache ? cache->length() : 0;
  if (start + T > cfg_.block_size)
    throw ShapeError(fmt::format("gpt2: position {} is past block_size {}", start + T, cfg_.block_size));
  Tensor positions = ctx.positions;  // packed rows: each document's own
  if (positions.defined()) {
    if (cache || positions.shape() != tokens.shape())
      throw ShapeError(fmt::format("gpt2: positions {} of packed rows must match tokens {} (and fill no cache)",
                                   positions.desc(), tokens.desc()));
  } else {
    std::vector<int64_t> pos(T);
    for (int64_t t = 0; t < T; ++t) pos[t] = start + t;
    positions = tokens.is_meta() ? Tensor::empty(Shape{T}, DType::I64, Device::Meta) : Tensor::from_ints(Shape{T}, pos);
  }
  Tensor x = add(wte_->forward(tokens), wpe_->forward(positions));  // (B, T, C) f32
  x = cast(dropout(x, cfg_.dropout, ctx, 0), ctx.compute);
  const bool selective = checkpointing_.selective() && !cache;
  for (int64_t i = 0; i < cfg_.n_layer; ++i) {
    const GPT2Block* block = blocks_[i].get();
    x = run_block(i, x, ctx, cache != nullptr, [block, selective, cache, start](const Tensor& in, const Context& c) {
      return block->forward(in, c, selective, cache, start);
    });
  }
  return ln_f_->forward(x);
}

Tensor GPT2::loss(const Tensor& tokens, const Tensor& targets, const Context& ctx,
                  int64_t* count, int64_t ignore_index) const {
  Tensor h = hidden(tokens, ctx);
  return linear_cross_entropy(h, wte_->weight(), targets, ignore_index, count, 0, ctx.grad_scale);
}

Tensor GPT2::logits(const Tensor& tokens, const Context& ctx) const { return head(hidden(tokens, ctx)); }

Tensor GPT2::logits_cached(const Tensor& tokens, KVCache& cache) const {
  Tensor h = hidden(tokens, Context{}, &cache);
  return head(slice(h, 1, h.dim(1) - 1, 1));
}

Tensor GPT2::head(const Tensor& h) const { return matmul(h, cast(wte_->weight(), h.dtype()), false, true); }

}  // namespace bb
