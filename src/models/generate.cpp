// Generation through a key/value cache: the prompt fills the cache once, then each new token
// costs one position. When the context passes the model's positions the window slides and
// positions shift, so from then on each token re-runs the visible window (the uncached path).
#include "models/generate.h"

#include "core/grad_mode.h"
#include "models/kv_cache.h"
#include "ops/ops.h"

namespace bb {
namespace {

// The logits (B = 1, T, V) of the last position, as floats (only that row is converted).
std::vector<float> last_row(const Tensor& logits) { return slice(logits, 1, logits.dim(1) - 1, 1).to_floats(); }

Tensor ids_tensor(std::vector<int64_t>::const_iterator begin, std::vector<int64_t>::const_iterator end) {
  std::vector<int64_t> ids(begin, end);
  return Tensor::from_ints(Shape{1, static_cast<int64_t>(ids.size())}, ids);
}

}  // namespace

std::vector<int64_t> generate_ids(const CausalLM& model, std::vector<int64_t> prompt, const SamplingOptions& o,
                                  bool use_cache, const OnToken& on_token) {
  NoGradGuard no_grad;
  KVCache cache(model.max_positions());
  size_t fed = 0;  // leading tokens of the context whose keys and values the cache holds
  // `generate` hands over the visible context; it only grows by one token until the window
  // starts to slide, after which its length stays at the model's limit (== fed).
  auto next = [&](const std::vector<int64_t>& ctx) {
    if (use_cache && ctx.size() > fed) {
      Tensor logits = model.logits_cached(ids_tensor(ctx.begin() + fed, ctx.end()), cache);
      fed = ctx.size();
      return last_row(logits);
    }
    return last_row(model.logits(ids_tensor(ctx.begin(), ctx.end()), Context{}));
  };
  return generate(next, std::move(prompt), o, model.max_positions(), on_token);
}

}  // namespace bb
