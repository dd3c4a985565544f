// Progress lines, metrics records and samples.
#include "cli/report.h"

#include <fmt/format.h>

#include <filesystem>
#include <sstream>

#include "core/grad_mode.h"
#include "io/atomic_file.h"
#include "core/process_memory.h"
#include "models/generate.h"
#include "models/sampling.h"

namespace bb {

void trim_metrics(const std::string& path, int64_t step) {
  if (!std::filesystem::exists(path)) return;
  std::istringstream in(read_text_file(path));
  std::string line, kept;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("step", int64_t(0)) <= step) kept += line + "\n";
  }
  write_text_atomic(path, kept);
}

nlohmann::json step_metrics(const StepResult& r, double seconds) {
  const MemoryStats mem = Allocator::of(Device::CPU).stats();
  return {{"step", r.step},           {"loss", r.loss},
          {"lr", r.lr},               {"grad_norm", r.grad_norm},
          {"tokens", r.tokens},       {"tokens_per_s", seconds > 0 ? r.tokens / seconds : 0.0},
          {"step_s", seconds},        {"skipped", r.skipped},
          {"loss_scale", r.loss_scale}, {"mem_live", mem.total_live},
          {"mem_peak", mem.total_peak}, {"rss_peak", peak_rss_bytes()}};
}

std::string progress_line(const StepResult& r, double seconds, int64_t total_steps,
                          const MemoryStats& mem, const nlohmann::json& m) {
  std::string s = fmt::format("step {:>5}/{} | loss {:.4f} | lr {:.2e} | {:>7.0f} tok/s | mem {} (peak {})",
                              r.step, total_steps, r.loss, r.lr, seconds > 0 ? r.tokens / seconds : 0.0,
                              format_bytes(mem.total_live), format_bytes(mem.total_peak));
  if (m.contains("val_loss")) s += fmt::format(" | val {:.4f}", m["val_loss"].get<double>());
  if (r.skipped) s += " | skipped (overflow)";
  return s;
}

std::string sample_text(const CausalLM& model, const Tokenizer& tok, const std::string& prompt,
                        int64_t max_new_tokens, double temperature, int64_t top_k, uint64_t seed,
                        double top_p) {
  SamplingOptions o;
  o.max_new_tokens = max_new_tokens;
  o.temperature = static_cast<float>(temperature);
  o.top_k = top_k;
  o.top_p = static_cast<float>(top_p);
  o.eos_id = tok.eos_id();
  o.seed = seed;
  std::vector<int64_t> ids = tok.encode(prompt);
  if (ids.empty()) ids.push_back(tok.eos_id() >= 0 ? tok.eos_id() : 0);
  return tok.decode(generate_ids(model, ids, o));
}

void print_sample(const CausalLM& model, const Tokenizer& tok, const RunConfig& cfg) {
  if (cfg.sample.max_new_tokens <= 0) return;
  std::string text = sample_text(model, tok, cfg.sample.prompt, cfg.sample.max_new_tokens,
                                 cfg.sample.temperature, cfg.sample.top_k, static_cast<uint64_t>(cfg.train.seed));
  fmt::print("sample:\n{}\n", text);
}

}  // namespace bb
