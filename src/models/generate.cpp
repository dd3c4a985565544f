// Cached and uncached generation loops.
#include "models/generate.h"

#include "core/grad_mode.h"
#include "models/kv_cache.h"
#include "models/llama.h"

namespace bb {
namespace {

std::vector<float> last_row(const Tensor& logits) {
  std::vector<float> all = logits.to_floats();
  const int64_t v = logits.dim(-1);
  return std::vector<float>(all.end() - v, all.end());
}

Tensor ids_tensor(const std::vector<int64_t>& ids) {
  return Tensor::from_ints(Shape{1, static_cast<int64_t>(ids.size())}, ids);
}

}  // namespace

std::vector<int64_t> generate_ids(const CausalLM& model, std::vector<int64_t> prompt, const SamplingOptions& o,
                                  bool use_cache) {
  NoGradGuard no_grad;
  const auto* llama = dynamic_cast<const Llama*>(&model);
  const int64_t limit = model.max_positions();
  // The cache holds positions from 0; once the context would pass the model's positions the
  // window slides, which needs a fresh forward per token (the uncached path).
  if (llama && use_cache && static_cast<int64_t>(prompt.size()) + o.max_new_tokens <= limit && !prompt.empty()) {
    uint64_t rng = o.seed;
    KVCache cache;
    std::vector<float> next = last_row(llama->logits_cached(ids_tensor(prompt), cache));
    for (int64_t i = 0; i < o.max_new_tokens; ++i) {
      const int64_t tok = sample_token(next, o, rng);
      if (tok == o.eos_id) break;
      prompt.push_back(tok);
      if (i + 1 < o.max_new_tokens) next = last_row(llama->logits_cached(ids_tensor({tok}), cache));
    }
    return prompt;
  }
  auto next = [&](const std::vector<int64_t>& ctx) { return last_row(model.logits(ids_tensor(ctx), Context{})); };
  return generate(next, std::move(prompt), o, limit);
}

}  // namespace bb
