// Shared pieces of the benchmarks: the matmul ceiling measured in the same process, robust
// statistics of repeated timings, and a stream of random tokens.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>

#include <CLI/CLI.hpp>

#include "backend/matmul_rate.h"
#include "backend/profile.h"
#include "core/tensor.h"
#include "data/dataset.h"
#include "models/gpt2.h"
#include "train/trainer.h"

namespace bb::bench {

inline double seconds_of(const std::function<void()>& fn) {
  auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Stats {
  double min = 0, median = 0, max = 0;
};

inline Stats stats_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v.front(), v[v.size() / 2], v.back()};
}

// oneDNN's own matmul rate on this machine now (GFLOP/s, best of several), on a square
// product large enough to reach its peak: the ceiling the other figures are compared to.
inline double matmul_ceiling_gflops(DType dtype, int64_t n = 2048, int reps = 5) {
  return measure_matmul_flops(n, n, n, dtype, reps) / 1e9;
}

// Uniform random tokens (B, T) with next-token targets; sample i is fixed by its index.
class RandomTokens final : public Dataset {
 public:
  RandomTokens(int64_t vocab, int64_t seq) : vocab_(vocab), seq_(seq) {}
  Batch batch(int64_t first, int64_t count) const override {
    Batch b;
    b.tokens = Tensor::empty(Shape{count, seq_}, DType::I64);
    b.targets = Tensor::empty(Shape{count, seq_}, DType::I64);
    for (int64_t i = 0; i < count * seq_; ++i) {
      uint64_t r = mix64(static_cast<uint64_t>(first) * 1000003 + i);
      b.tokens.data<int64_t>()[i] = static_cast<int64_t>(r % vocab_);
      b.targets.data<int64_t>()[i] = static_cast<int64_t>((r >> 32) % vocab_);
    }
    b.target_count = count * seq_;
    b.samples = count;
    return b;
  }

 private:
  int64_t vocab_, seq_;
};

// The GPT shape and step counts the training benchmarks share, as command-line options.
struct GptRun {
  int64_t layers, heads, embd, vocab, seq, mb, accum, steps, warmup;
  void add_options(CLI::App& app) {
    app.add_option("--layers", layers)->check(CLI::PositiveNumber);
    app.add_option("--heads", heads)->check(CLI::PositiveNumber);
    app.add_option("--embd", embd)->check(CLI::PositiveNumber);
    app.add_option("--vocab", vocab)->check(CLI::PositiveNumber);
    app.add_option("--seq", seq)->check(CLI::PositiveNumber);
    app.add_option("--mb", mb)->check(CLI::PositiveNumber);
    app.add_option("--accum", accum)->check(CLI::PositiveNumber);
    app.add_option("--steps", steps)->check(CLI::PositiveNumber);
    app.add_option("--warmup", warmup)->check(CLI::NonNegativeNumber);
  }
  GPT2Config config() const {
    return GPT2Config{.n_layer = layers, .n_head = heads, .n_embd = embd, .block_size = seq, .vocab_size = vocab};
  }
  double tokens_per_step() const { return double(mb) * seq * accum; }
  // Runs the warmup steps, then times `steps` steps; the last loss goes to *loss.
  std::vector<double> time_steps(Trainer& trainer, double* loss) const {
    for (int64_t i = 0; i < warmup; ++i) trainer.step();
    std::vector<double> times;
    for (int64_t i = 0; i < steps; ++i) times.push_back(seconds_of([&] { *loss = trainer.step().loss; }));
    return times;
  }
};

// --profile: after the timed steps (so their figures are the same with it or without), the
// per-op profile of three more steps, on stderr (stdout carries the JSON line).
inline void add_profile_option(CLI::App& app, bool& profile) {
  app.add_flag("--profile", profile, "after the timed steps, print the time by phase and op of 3 more to stderr");
}
inline void print_profile(Trainer& trainer) {
  constexpr int kSteps = 3;
  start_profile();
  for (int i = 0; i < kSteps; ++i) trainer.step();
  std::fputs(format_profile(stop_profile(), kSteps).c_str(), stderr);
}

}  // namespace bb::bench
