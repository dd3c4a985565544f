// What the CLI shows while it works: the progress line, the metrics record of a step, and
// a generated sample.
#pragma once
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "core/allocator.h"
#include "data/tokenizer.h"
#include "models/causal_lm.h"
#include "models/sampling.h"
#include "train/config.h"
#include "train/trainer.h"

namespace bb {

// Elapsed time of this run and the steps it has done, for the ETA of the progress line.
struct RunClock {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  int64_t first_step = 0;  // steps done when this run started (a resumed run starts later)
  double elapsed() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); }
  // Seconds left for `total` steps at the pace so far, after `done` of them; < 0 when unknown.
  double eta(int64_t done, int64_t total) const;
};

// One metrics.jsonl record (docs/report.md lists the fields). The memory of the step is the
// allocator's window since the last reset_window_peaks(), which the loop calls before a step.
nlohmann::json step_metrics(const StepResult& r, double seconds);
// Keeps the metrics.jsonl lines of steps up to `step` (a resumed run writes the rest again);
// rewritten atomically.
void trim_metrics(const std::string& path, int64_t step);
// Ends with this run's elapsed time and the ETA of the remaining steps at the pace so far.
std::string progress_line(const StepResult& r, double seconds, int64_t total_steps,
                          const MemoryStats& mem, const nlohmann::json& metrics, const RunClock& clock);
// "1 step", "2 steps", "4 micro-batches": n and the noun, plural (`many`, else one + "s")
// unless n is 1.
std::string count_of(int64_t n, const std::string& one, const std::string& many = "");
// "12s", "3m05s", "2h07m".
std::string format_duration(double seconds);
// Generates from cfg.sample.prompt and prints the text.
void print_sample(const CausalLM& model, const Tokenizer& tok, const RunConfig& cfg);
// Samples a continuation of `prompt` (BOS first when the tokenizer adds it) until one of the
// tokenizer's stop ids, and prints the prompt (when echo_prompt), then each token as it comes
// (flushed), as valid UTF-8: a character split over tokens waits for its last byte.
void stream_sample(const CausalLM& model, const Tokenizer& tok, const std::string& prompt,
                   const SamplingOptions& o, bool echo_prompt = true);

}  // namespace bb
