// CausalLM: what training, evaluation and generation need from a language model, so GPT-2
// and Llama share the trainer, the CLI and the samplers (cached decoding included).
#pragma once
#include <functional>
#include <string>

#include "autograd/checkpoint.h"

#include "models/kv_cache.h"
#include "nn/checkpoint_policy.h"
#include "nn/context.h"
#include "nn/module.h"

namespace bb {

class CausalLM : public Module {
 public:
  virtual std::string model_type() const = 0;  // Hugging Face model_type: "gpt2", "llama"
  virtual int64_t vocab_size() const = 0;
  virtual int64_t max_positions() const = 0;
  // Sum of cross-entropy over targets (B, T) that are not ignore_index (f32 scalar); the
  // number of counted targets goes to *count. Never holds all (B*T, V) logits.
  virtual Tensor loss(const Tensor& tokens, const Tensor& targets, const Context& ctx, int64_t* count,
                      int64_t ignore_index = -100) const = 0;
  // Logits (B, T, V), for generation and evaluation.
  virtual Tensor logits(const Tensor& tokens, const Context& ctx) const = 0;
  // Logits (B, 1, V) of the last of `tokens`, which follow what `cache` holds (positions
  // cache.length() onwards); appends their keys and values. Either a whole prompt into an
  // empty cache or one token at a time after it. Only the last position goes through the LM
  // head: generation needs nothing else. Without gradient.
  virtual Tensor logits_cached(const Tensor& tokens, KVCache& cache) const = 0;
  // Blocks that activation checkpointing may wrap, in order.
  virtual int64_t num_blocks() const = 0;
  virtual const Module& block(int64_t index) const = 0;

  void set_checkpointing(CheckpointPolicy p) { checkpointing_ = p; }
  const CheckpointPolicy& checkpointing() const { return checkpointing_; }

 protected:
  using BlockForward = std::function<Tensor(const Tensor& x, const Context& ctx)>;
  // Runs block `index` on x: through checkpoint() when the policy wraps it and no cache is
  // being filled, else directly. `forward` may run again in backward (the replay, with
  // ctx.recomputing set), so it must capture by value.
  Tensor run_block(int64_t index, const Tensor& x, const Context& ctx, bool caching, BlockForward forward) const {
    if (caching || !checkpointing_.wraps(index)) return forward(x, ctx);
    // The block's own trained parameters decide too: under LoRA the embeddings are frozen,
    // so block 0's input needs no gradient while its adapters do.
    std::vector<Tensor> trained;
    for (const Tensor& p : block(index).parameters())
      if (p.requires_grad()) trained.push_back(p);
    return checkpoint([forward, ctx](const Tensor& in, bool recomputing) {
      Context c = ctx;
      c.recomputing = recomputing;
      return forward(in, c);
    }, x, trained);
  }

  CheckpointPolicy checkpointing_;
};

}  // namespace bb
