// LoRA against full fine-tuning of a GPT-2-124M-shaped model (12 layers, 12 heads, 768 wide,
// vocabulary 50257, random weights): tokens/s, peak resident memory and counted memory by
// category. One configuration per process (--mode lora or --mode full), so each peak RSS is
// its own; bf16 compute, LoRA base weights in bf16 (--base-dtype), activation checkpointing
// by --checkpointing (none, full, every:N, selective). Effective batch = mb x accum sequences.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "core/process_memory.h"
#include "models/gpt2.h"
#include "nn/lora.h"
#include "optim/optimizer.h"
#include "train/job.h"
#include "train/trainer.h"

using namespace bb;

int main(int argc, char** argv) {
  CLI::App app{"LoRA vs full fine-tuning benchmark"};
  bench::GptRun run{.layers = 12, .heads = 12, .embd = 768, .vocab = 50257, .seq = 512, .mb = 4, .accum = 8,
                    .steps = 2, .warmup = 1};
  int64_t r = 8;
  std::string mode = "lora", precision = "bf16", base_dtype = "bf16", targets = "c_attn", checkpointing = "none";
  app.add_option("--mode", mode, "lora or full");
  run.add_options(app);
  app.add_option("--r", r);
  app.add_option("--targets", targets);
  app.add_option("--precision", precision, "fp32 or bf16 compute");
  app.add_option("--base-dtype", base_dtype, "fp32 or bf16 frozen base weights (lora)");
  app.add_option("--checkpointing", checkpointing);
  bool profile = false;
  bench::add_profile_option(app, profile);
  CLI11_PARSE(app, argc, argv);

  const auto& [layers, heads, embd, vocab, seq, mb, accum, steps, warmup] = run;
  GPT2 model(run.config(), 0);
  model.set_checkpointing(CheckpointPolicy::parse(checkpointing));
  if (mode == "lora") {
    LoraOptions o;
    o.r = r;
    o.alpha = 2.0f * r;
    o.targets = split_target_modules(targets);
    o.base_dtype = base_dtype == "bf16" ? DType::BF16 : DType::F32;
    apply_lora(model, o);
  }
  AdamW opt(default_param_groups(model.named_parameters()), AdamWOptions{.weight_decay = 0.0f});
  int64_t trainable = 0;
  for (auto& g : opt.params()) trainable += g.param.numel();
  bench::RandomTokens data(vocab, seq);
  SingleProcess comm;
  Trainer trainer(lm_loss(model), opt, data, Schedule{.kind = "constant", .lr = 1e-4f},
                  TrainerOptions{.micro_batch = mb, .grad_accum = accum, .grad_clip = 1.0f,
                                 .precision = parse_precision(precision)},
                  comm);
  double loss = 0;
  const std::vector<double> times = run.time_steps(trainer, &loss);
  const MemoryStats mem = Allocator::of(Device::CPU).stats();
  if (profile) bench::print_profile(trainer);
  bench::Stats s = bench::stats_of(times);
  const double tokens = run.tokens_per_step();
  nlohmann::json by_cat;
  for (Category c : {Category::Parameters, Category::Gradients, Category::OptimizerState, Category::Activations,
                     Category::Workspace})
    by_cat[std::string(category_name(c))] = mem.peak[static_cast<size_t>(c)] / 1048576.0;
  nlohmann::json out = {{"mode", mode}, {"precision", precision}, {"base_dtype", mode == "lora" ? base_dtype : "fp32"},
                        {"checkpointing", checkpointing}, {"mb", mb}, {"accum", accum}, {"seq", seq},
                        {"params_M", model.parameter_count() / 1e6}, {"trainable_M", trainable / 1e6},
                        {"step_s_med", s.median}, {"tok_s_med", tokens / s.median},
                        {"peak_rss_MiB", peak_rss_bytes() / 1048576.0},
                        {"counted_peak_MiB", mem.total_peak / 1048576.0}, {"peak_by_category_MiB", by_cat},
                        {"loss", loss}};
  fmt::print("{}\n", out.dump());
  return 0;
}
