// Generation from any causal language model (GPT-2, Llama) with a key/value cache: each new
// token costs one position; `use_cache = false` re-runs the visible context every token.
#pragma once
#include <vector>

#include "models/causal_lm.h"
#include "models/sampling.h"

namespace bb {

// Extends `prompt` under the sampling options (stops at any of o.stop_ids); without gradients.
// `on_token` sees each new token as it is chosen (for printing as it comes).
std::vector<int64_t> generate_ids(const CausalLM& model, std::vector<int64_t> prompt, const SamplingOptions& o,
                                  bool use_cache = true, const OnToken& on_token = {});

}  // namespace bb
