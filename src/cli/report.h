// What the CLI shows while it works: the progress line, the metrics record of a step, and
// a generated sample.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "core/allocator.h"
#include "data/tokenizer.h"
#include "models/causal_lm.h"
#include "train/config.h"
#include "train/trainer.h"

namespace bb {

nlohmann::json step_metrics(const StepResult& r, double seconds);
// Keeps the metrics.jsonl lines of steps up to `step` (a resumed run writes the rest again);
// rewritten atomically.
void trim_metrics(const std::string& path, int64_t step);
std::string progress_line(const StepResult& r, double seconds, int64_t total_steps,
                          const MemoryStats& mem, const nlohmann::json& metrics);
// Generates from cfg.sample.prompt and prints the text.
void print_sample(const CausalLM& model, const Tokenizer& tok, const RunConfig& cfg);
// The sampled continuation of `prompt` (prompt included).
std::string sample_text(const CausalLM& model, const Tokenizer& tok, const std::string& prompt,
                        int64_t max_new_tokens, double temperature, int64_t top_k, uint64_t seed,
                        double top_p = 1.0);

}  // namespace bb
