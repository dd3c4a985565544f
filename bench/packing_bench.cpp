// Packed rows against padded ones on instruction data of realistic length spread (most
// examples short, a few near the block size; the first 40% of each a prompt that trains
// nothing): trained tokens/s, the share of each step's row places that hold padding (compute
// spent on nothing), and peak memory. One mode a process (--mode padded or packed), so each
// peak RSS is its own. --model gpt2 is GPT-2 124M's shape; --model llama a small Llama (12
// layers, 768 wide, 12 heads over 4 kv heads, 2048 MLP, vocabulary 32000). Random weights.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "core/process_memory.h"
#include "data/instruct_dataset.h"
#include "data/packing.h"
#include "models/llama.h"
#include "optim/optimizer.h"
#include "train/job.h"
#include "train/precision.h"
#include "train/trainer.h"

using namespace bb;

namespace {

// Example lengths from a log-normal (median ~ seq/6), cut to [8, seq + 1]; tokens below
// vocab - 1, which is the padding id.
std::vector<Sequence> examples(int64_t count, int64_t seq, int64_t vocab) {
  std::vector<Sequence> out;
  for (int64_t e = 0; e < count; ++e) {
    const double u1 = (double(mix64(2 * e) % 1000000) + 0.5) / 1e6, u2 = (double(mix64(2 * e + 1) % 1000000) + 0.5) / 1e6;
    const double normal = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    const auto n = std::clamp<int64_t>(int64_t(double(seq) / 6.0 * std::exp(0.8 * normal)), 8, seq + 1);
    Sequence s;
    for (int64_t t = 0; t < n; ++t) {
      s.ids.push_back(int32_t(mix64(e * 100003 + t) % uint64_t(vocab - 1)));
      s.trained.push_back(t >= n * 2 / 5);
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"packed vs padded instruction batches"};
  std::string mode = "packed", model_name = "gpt2", precision = "bf16";
  int64_t seq = 512, mb = 4, accum = 2, steps = 3, warmup = 1, count = 2000;
  app.add_option("--mode", mode, "padded or packed");
  app.add_option("--model", model_name, "gpt2 (124M shapes) or llama (a small Llama)");
  app.add_option("--precision", precision, "fp32 or bf16");
  app.add_option("--seq", seq, "block size")->check(CLI::PositiveNumber);
  app.add_option("--mb", mb, "rows a micro-batch")->check(CLI::PositiveNumber);
  app.add_option("--accum", accum, "micro-batches a step")->check(CLI::PositiveNumber);
  app.add_option("--steps", steps, "timed steps")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed steps first")->check(CLI::NonNegativeNumber);
  app.add_option("--examples", count, "instruction examples")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  if (mode != "padded" && mode != "packed") {
    fmt::print(stderr, "--mode must be padded or packed\n");
    return 1;
  }
  std::unique_ptr<CausalLM> model;
  if (model_name == "llama")
    model = std::make_unique<Llama>(LlamaConfig{.hidden_size = 768, .intermediate_size = 2048, .num_hidden_layers = 12,
                                                .num_attention_heads = 12, .num_key_value_heads = 4,
                                                .vocab_size = 32000, .max_position_embeddings = seq},
                                    0);
  else
    model = std::make_unique<GPT2>(GPT2Config{.n_layer = 12, .n_head = 12, .n_embd = 768, .block_size = seq, .vocab_size = 50257}, 0);
  const int64_t vocab = model->vocab_size(), pad = vocab - 1;
  std::vector<Sequence> es = examples(count, seq, vocab);
  std::unique_ptr<Dataset> data;
  if (mode == "packed") {
    data = std::make_unique<PackedDataset>(es, seq, 1, pad);
  } else {
    std::vector<InstructExample> padded;
    for (const Sequence& s : es) padded.push_back({s.ids, s.trained});
    data = std::make_unique<InstructDataset>(std::move(padded), seq, 1, pad);
  }
  // What the timed steps read: row places, the places that hold padding, trained targets.
  int64_t places = 0, padding = 0;
  const int64_t first = warmup * mb * accum, rows = steps * mb * accum;
  for (int64_t i = 0; i < rows; i += mb) {
    const Batch b = data->batch(first + i, mb);
    places += b.tokens.numel();
    for (int64_t j = 0; j < b.tokens.numel(); ++j)
      padding += b.tokens.data<int64_t>()[j] == pad && b.targets.data<int64_t>()[j] == kIgnoreIndex;
  }
  AdamW opt(default_param_groups(model->named_parameters()), AdamWOptions{.weight_decay = 0.0f});
  SingleProcess comm;
  Trainer trainer(lm_loss(*model), opt, *data, Schedule{.kind = "constant", .lr = 1e-4f},
                  TrainerOptions{.micro_batch = mb, .grad_accum = accum, .grad_clip = 1.0f,
                                 .precision = parse_precision(precision)},
                  comm);
  for (int64_t i = 0; i < warmup; ++i) trainer.step();
  std::vector<double> times;
  int64_t trained = 0;
  for (int64_t i = 0; i < steps; ++i)
    times.push_back(bench::seconds_of([&] { trained += trainer.step().tokens; }));
  double total = 0;
  for (double t : times) total += t;
  const bench::Stats s = bench::stats_of(times);
  nlohmann::json out = {{"mode", mode}, {"model", model_name}, {"precision", precision}, {"seq", seq}, {"mb", mb},
                        {"accum", accum}, {"examples", count}, {"rows_per_epoch", data->size()},
                        {"step_s_med", s.median}, {"step_s_min", s.min}, {"step_s_max", s.max},
                        {"trained_tok_per_step", double(trained) / double(steps)},
                        {"trained_tok_s", double(trained) / total},
                        {"padding_share", double(padding) / double(places)},
                        {"peak_rss_MiB", peak_rss_bytes() / 1048576.0},
                        {"counted_peak_MiB", Allocator::of(Device::CPU).stats().total_peak / 1048576.0}};
  fmt::print("{}\n", out.dump());
  return 0;
}
