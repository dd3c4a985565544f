// Progress lines, metrics records and samples.
#include "cli/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "core/grad_mode.h"
#include "data/utf8_stream.h"
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
  nlohmann::json step_peak = nlohmann::json::object();
  for (int c = 0; c < kNumCategories; ++c) step_peak[std::string(category_name(Category(c)))] = mem.window_peak[c];
  return {{"step", r.step},           {"loss", r.loss},
          {"lr", r.lr},               {"grad_norm", r.grad_norm},
          {"tokens", r.tokens},       {"tokens_per_s", seconds > 0 ? r.tokens / seconds : 0.0},
          {"step_s", seconds},        {"skipped", r.skipped},
          {"loss_scale", r.loss_scale}, {"mem_live", mem.total_live},
          {"mem_peak", mem.total_peak}, {"rss_peak", peak_rss_bytes()},
          {"mem_step_peak", mem.window_total_peak}, {"mem_step_peak_by", step_peak}};
}

double RunClock::eta(int64_t done, int64_t total) const {
  const int64_t ran = done - first_step;
  if (ran <= 0) return -1;
  return elapsed() / static_cast<double>(ran) * static_cast<double>(std::max<int64_t>(0, total - done));
}

std::string count_of(int64_t n, const std::string& one, const std::string& many) {
  if (n == 1) return "1 " + one;
  return fmt::format("{} {}", n, many.empty() ? one + "s" : many);
}

std::string format_duration(double seconds) {
  const int64_t s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
}

std::string progress_line(const StepResult& r, double seconds, int64_t total_steps,
                          const MemoryStats& mem, const nlohmann::json& m, const RunClock& clock) {
  std::string s = fmt::format("step {:>5}/{} | loss {:.4f} | lr {:.2e} | {:>7.0f} tok/s | mem {} (peak {})",
                              r.step, total_steps, r.loss, r.lr, seconds > 0 ? r.tokens / seconds : 0.0,
                              format_bytes(mem.total_live), format_bytes(mem.total_peak));
  if (m.contains("val_loss")) s += fmt::format(" | val {:.4f}", m["val_loss"].get<double>());
  const double eta = clock.eta(r.step, total_steps);
  s += fmt::format(" | {} elapsed, ETA {}", format_duration(clock.elapsed()), eta < 0 ? "?" : format_duration(eta));
  if (r.skipped) s += r.tokens == 0 ? " | skipped (no target tokens)" : " | skipped (overflow)";
  return s;
}

void stream_sample(const CausalLM& model, const Tokenizer& tok, const std::string& prompt,
                   const SamplingOptions& options, bool echo_prompt) {
  SamplingOptions o = options;
  o.stop_ids = tok.stop_ids();
  std::vector<int64_t> ids = tok.encode(prompt);
  // as in training: BOS first when the tokenizer adds it, once
  if (tok.special().add_bos && (ids.empty() || ids[0] != tok.bos_id())) ids.insert(ids.begin(), tok.bos_id());
  if (ids.empty()) ids.push_back(tok.eos_id() >= 0 ? tok.eos_id() : 0);
  // The whole sequence is decoded again at each token: a tokenizer may decode a token
  // differently at the start of a text (SentencePiece drops a leading space), and the new
  // bytes are what the longer text adds.
  Utf8Stream utf8;
  size_t written = 0;
  auto write_new = [&] {
    const std::string text = tok.decode(ids);
    if (text.size() > written) {
      std::fputs(utf8.push(std::string_view(text).substr(written)).c_str(), stdout);
      written = text.size();
    }
    std::fflush(stdout);
  };
  if (echo_prompt) write_new();
  else written = tok.decode(ids).size();
  generate_ids(model, ids, o, true, [&](int64_t token) {
    ids.push_back(token);
    write_new();
  });
  std::fputs((utf8.finish() + "\n").c_str(), stdout);
  std::fflush(stdout);
}

void print_sample(const CausalLM& model, const Tokenizer& tok, const RunConfig& cfg) {
  if (cfg.sample.max_new_tokens <= 0) return;
  SamplingOptions o;
  o.max_new_tokens = cfg.sample.max_new_tokens;
  o.temperature = static_cast<float>(cfg.sample.temperature);
  o.top_k = cfg.sample.top_k;
  o.seed = static_cast<uint64_t>(cfg.train.seed);
  fmt::print("sample:\n");
  stream_sample(model, tok, cfg.sample.prompt, o);
}

}  // namespace bb
