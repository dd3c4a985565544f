// Text generation from a causal language model: greedy, temperature, top-k and top-p
// (nucleus) sampling.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "core/tensor.h"

namespace bb {

struct SamplingOptions {
  int64_t max_new_tokens = 100;
  float temperature = 0.8f;  // 0: greedy
  int64_t top_k = 40;        // 0: all tokens
  float top_p = 1.0f;        // keep the likeliest tokens whose probabilities sum to top_p (1: all)
  std::vector<int64_t> stop_ids;  // stop when one is sampled (a model may declare several EOS)
  uint64_t seed = 0;
};

// Throws ConfigError naming the option unless temperature >= 0, top_k >= 0 and top_p is in
// (0, 1] (nan fails each); generate() checks before the first token.
void check_sampling_options(const SamplingOptions& o);

// Logits of the last position (vocab floats) for a context of token ids.
using NextLogits = std::function<std::vector<float>(const std::vector<int64_t>& context)>;
// Called with each new token as soon as it is chosen (EOS, which ends generation, is not passed).
using OnToken = std::function<void(int64_t token)>;

// Picks the next token from logits under the options, drawing from `rng_state`.
int64_t sample_token(std::vector<float> logits, const SamplingOptions& o, uint64_t& rng_state);

// Extends `prompt` one token at a time; `context_limit` crops what the model sees.
std::vector<int64_t> generate(const NextLogits& next, std::vector<int64_t> prompt,
                              const SamplingOptions& o, int64_t context_limit, const OnToken& on_token = {});

}  // namespace bb
