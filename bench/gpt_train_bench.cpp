// GPT training throughput: tokens/s, model FLOP utilisation against the matmul ceiling
// measured in the same process, and peak memory (counted and resident). One configuration
// per process, like the PyTorch peer (../shared/peers/torch_gpt_bench.py), with the same
// model, optimizer (AdamW, clip 1.0) and timing (median over steps after warmup).
// Run bench/run_gpt_bench.sh to get ours and the peer's figures in one run, as ratios.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "core/process_memory.h"
#include "models/gpt2.h"
#include "optim/optimizer.h"
#include "train/job.h"
#include "train/trainer.h"

using namespace bb;

int main(int argc, char** argv) {
  CLI::App app{"GPT training benchmark"};
  bench::GptRun run{.layers = 6, .heads = 6, .embd = 384, .vocab = 50257, .seq = 256, .mb = 8, .accum = 1, .steps = 5,
                    .warmup = 1};
  std::string precision = "fp32", tag, checkpointing = "none";
  run.add_options(app);
  app.add_option("--precision", precision, "fp32 or bf16");
  app.add_option("--tag", tag);
  app.add_option("--checkpointing", checkpointing, "none, full, every:N or selective");
  bool profile = false;
  bench::add_profile_option(app, profile);
  CLI11_PARSE(app, argc, argv);
  give_large_blocks_their_own_pages();  // as the CLI does: the same resident memory

  const auto& [layers, heads, embd, vocab, seq, mb, accum, steps, warmup] = run;
  GPT2 model(run.config(), 0);
  model.set_checkpointing(CheckpointPolicy::parse(checkpointing));
  AdamW opt(default_param_groups(model.named_parameters()), AdamWOptions{.beta1 = 0.9f, .beta2 = 0.95f, .weight_decay = 0.1f});
  bench::RandomTokens data(vocab, seq);
  SingleProcess comm;
  Trainer trainer(lm_loss(model), opt, data, Schedule{.kind = "constant", .lr = 6e-4f},
                  TrainerOptions{.micro_batch = mb, .grad_accum = accum, .grad_clip = 1.0f,
                                 .precision = parse_precision(precision)},
                  comm);
  const int64_t rss_init = peak_rss_bytes();
  double loss = 0;
  const std::vector<double> times = run.time_steps(trainer, &loss);
  const int64_t peak_rss = peak_rss_bytes();
  const MemoryStats mem = Allocator::of(Device::CPU).stats();
  if (profile) bench::print_profile(trainer);

  // Ceiling after the run, so measuring it does not raise the run's peak memory.
  const double ceiling = bench::matmul_ceiling_gflops(precision == "bf16" ? DType::BF16 : DType::F32);
  const double matmul_params = layers * 12.0 * embd * embd + double(vocab) * embd;
  // Model FLOPs only: a checkpointing replay is overhead, not counted as useful work.
  const double flop_per_token = 6.0 * matmul_params + 12.0 * layers * seq * embd;
  bench::Stats s = bench::stats_of(times);
  const double tokens = run.tokens_per_step();
  const double tok_s = tokens / s.median;
  nlohmann::json out = {
      {"impl", "bigbatch"}, {"tag", tag}, {"layers", layers}, {"embd", embd}, {"vocab", vocab}, {"seq", seq},
      {"mb", mb}, {"accum", accum}, {"precision", precision}, {"checkpointing", checkpointing},
      {"params_M", model.parameter_count() / 1e6},
      {"step_s_min", s.min}, {"step_s_med", s.median}, {"step_s_max", s.max},
      {"tok_s_med", tok_s}, {"tok_s_best", tokens / s.min},
      {"mfu", tok_s * flop_per_token / (ceiling * 1e9)}, {"matmul_ceiling_gflops", ceiling},
      {"model_gflops", tok_s * flop_per_token / 1e9},
      {"peak_rss_MiB", peak_rss / 1048576.0}, {"rss_init_MiB", rss_init / 1048576.0},
      {"counted_peak_MiB", mem.total_peak / 1048576.0}, {"reserved_peak_MiB", mem.reserved_peak / 1048576.0},
      {"loss", loss}};
  fmt::print("{}\n", out.dump());
  return 0;
}
