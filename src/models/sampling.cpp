// Greedy / temperature / top-k / top-p sampling.
#include "models/sampling.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace bb {
namespace {
uint64_t next_random(uint64_t& s) {
  s += 0x9E3779B97F4A7C15ull;
  uint64_t x = s;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
}  // namespace

int64_t sample_token(std::vector<float> logits, const SamplingOptions& o, uint64_t& rng_state) {
  const int64_t v = static_cast<int64_t>(logits.size());
  if (o.temperature <= 0.0f)
    return std::max_element(logits.begin(), logits.end()) - logits.begin();
  std::vector<int64_t> idx(v);
  for (int64_t i = 0; i < v; ++i) idx[i] = i;
  int64_t k = (o.top_k > 0 && o.top_k < v) ? o.top_k : v;
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int64_t a, int64_t b) { return logits[a] > logits[b]; });
  const float top = logits[idx[0]];
  std::vector<double> p(k);
  double total = 0;
  for (int64_t i = 0; i < k; ++i) total += p[i] = std::exp((logits[idx[i]] - top) / o.temperature);
  if (o.top_p > 0.0f && o.top_p < 1.0f) {  // nucleus: the shortest prefix holding top_p of the mass
    double kept = 0;
    int64_t n = 0;
    while (n < k && kept < o.top_p * total) kept += p[n++];
    k = std::max<int64_t>(n, 1);
    total = kept > 0 ? kept : p[0];
  }
  double u = (next_random(rng_state) >> 11) * (1.0 / 9007199254740992.0) * total;
  for (int64_t i = 0; i < k; ++i) {
    if (u < p[i]) return idx[i];
    u -= p[i];
  }
  return idx[k - 1];
}

void check_sampling_options(const SamplingOptions& o) {
  // Written so that nan fails: a nan temperature would otherwise sample from nan weights.
  if (!(o.temperature >= 0.0f))
    throw ConfigError(fmt::format("temperature must be 0 (greedy) or positive, got {}", o.temperature));
  if (o.top_k < 0) throw ConfigError(fmt::format("top_k must be 0 (all tokens) or positive, got {}", o.top_k));
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f))
    throw ConfigError(fmt::format("top_p must be in (0, 1] (1: all tokens), got {}", o.top_p));
}

std::vector<int64_t> generate(const NextLogits& next, std::vector<int64_t> prompt,
                              const SamplingOptions& o, int64_t context_limit, const OnToken& on_token) {
  check_sampling_options(o);
  uint64_t rng = o.seed;
  for (int64_t i = 0; i < o.max_new_tokens; ++i) {
    const int64_t start = std::max<int64_t>(0, static_cast<int64_t>(prompt.size()) - context_limit);
    std::vector<int64_t> ctx(prompt.begin() + start, prompt.end());
    int64_t tok = sample_token(next(ctx), o, rng);
    if (std::find(o.stop_ids.begin(), o.stop_ids.end(), tok) != o.stop_ids.end()) break;
    prompt.push_back(tok);
    if (on_token) on_token(tok);
  }
  return prompt;
}

}  // namespace bb
