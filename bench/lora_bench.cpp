// LoRA against full fine-tuning of a GPT-2-124M-shaped model (12 layers, 12 heads, 768 wide,
// vocabulary 50257, random weights), or (--model llama) of a Llama at TinyLlama-1.1B's shapes
// (22 layers, 2048 wide, 32 heads over 4 kv heads, MLP 5632, vocabulary 32000; --layers cuts
// it): tokens/s, model FLOP utilisation, peak resident memory and counted memory by category.
// One configuration per process (--mode lora or --mode full), so each peak RSS is its own;
// bf16 compute, LoRA base weights in fp32, bf16, q8_0 or q4_0 (--base-dtype), activation
// checkpointing by --checkpointing (none, full, every:N, selective). Effective batch = mb x
// accum sequences. --write-model DIR saves the random model as a bf16 Hugging Face folder and
// exits; --init DIR trains from such a folder through the loader a user's run takes (each
// tensor converted to the base dtype as it is read, the file mapped, never the whole model
// in f32), so the peak RSS is a real load's.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "core/process_memory.h"
#include "models/gpt2.h"
#include "models/llama.h"
#include "io/hf_model.h"
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
  std::string mode = "lora", precision = "bf16", base_dtype = "bf16", targets, checkpointing = "none";
  std::string model_name = "gpt2";
  app.add_option("--mode", mode, "lora or full");
  app.add_option("--model", model_name, "gpt2 (124M shapes) or llama (TinyLlama-1.1B shapes)");
  run.add_options(app);
  app.add_option("--r", r);
  app.add_option("--targets", targets, "adapted modules (default: c_attn for gpt2, q_proj|v_proj for llama)");
  app.add_option("--precision", precision, "fp32 or bf16 compute");
  app.add_option("--base-dtype", base_dtype, "fp32, bf16, q8_0 or q4_0 frozen base weights (lora)");
  std::string write_dir, init_dir;
  app.add_option("--write-model", write_dir, "save the random model (bf16 safetensors) in this folder and exit");
  app.add_option("--init", init_dir, "load the model from this Hugging Face folder");
  app.add_option("--checkpointing", checkpointing);
  bool profile = false;
  bench::add_profile_option(app, profile);
  CLI11_PARSE(app, argc, argv);
  give_large_blocks_their_own_pages();  // as the CLI does: the same resident memory

  const bool llama = model_name == "llama";
  if (!llama && model_name != "gpt2") {
    fmt::print(stderr, "--model must be gpt2 or llama\n");
    return 1;
  }
  if (llama) {  // TinyLlama-1.1B unless --layers or --vocab say otherwise
    if (app.count("--layers") == 0) run.layers = 22;
    if (app.count("--vocab") == 0) run.vocab = 32000;
    run.embd = 2048;
  }
  if (targets.empty()) targets = llama ? "q_proj|v_proj" : "c_attn";
  const auto& [layers, heads, embd, vocab, seq, mb, accum, steps, warmup] = run;
  const DType base = base_dtype == "bf16"   ? DType::BF16
                     : base_dtype == "q8_0" ? DType::Q8_0
                     : base_dtype == "q4_0" ? DType::Q4_0
                                            : DType::F32;
  std::unique_ptr<CausalLM> owner;
  if (!init_dir.empty())
    owner = load_causal_lm(init_dir, Device::CPU, mode == "lora" ? base : DType::F32);
  else if (llama)
    owner = std::make_unique<Llama>(LlamaConfig{.hidden_size = 2048, .intermediate_size = 5632, .num_hidden_layers = layers,
                                                .num_attention_heads = 32, .num_key_value_heads = 4,
                                                .vocab_size = vocab, .max_position_embeddings = seq},
                                    0);
  else
    owner = std::make_unique<GPT2>(run.config(), 0);
  if (!write_dir.empty()) {
    // Each f32 tensor is freed as its bf16 copy takes its place.
    for (auto& [name, t] : owner->named_parameters()) owner->set_parameter(name, cast(t, DType::BF16));
    save_causal_lm(write_dir, *owner, SpecialIds{});
    fmt::print("wrote {}\n", write_dir);
    return 0;
  }
  CausalLM& model = *owner;
  model.set_checkpointing(CheckpointPolicy::parse(checkpointing));
  if (mode == "lora") {
    LoraOptions o;
    o.r = r;
    o.alpha = 2.0f * r;
    o.targets = split_target_modules(targets);
    o.base_dtype = base;
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
  const double peak_rss = peak_rss_bytes();  // before the profile and the ceiling's operands
  const MemoryStats mem = Allocator::of(Device::CPU).stats();
  if (profile) bench::print_profile(trainer);
  bench::Stats s = bench::stats_of(times);
  const double tokens = run.tokens_per_step();
  // Model FLOPs a token: every product with a weight forward and for the input's gradient, and
  // for the weight's gradient only where it trains (full); attention as in gpt_train_bench.
  // Embedding lookups are not products (GPT-2's tied table is, as the head).
  double matmul_params = 0;
  for (const auto& [name, p] : model.named_parameters())
    if (p.ndim() == 2 && name.find("wpe") == std::string::npos && (!llama || name.find("embed_tokens") == std::string::npos))
      matmul_params += double(p.numel());
  const double flop_per_token = (mode == "full" ? 6.0 : 4.0) * matmul_params + 12.0 * layers * seq * embd;
  const double ceiling = bench::matmul_ceiling_gflops(precision == "bf16" ? DType::BF16 : DType::F32);
  nlohmann::json by_cat;
  for (int c = 0; c < kNumCategories; ++c) by_cat[std::string(category_name(Category(c)))] = mem.peak[c] / 1048576.0;
  nlohmann::json out = {{"model", model_name}, {"targets", targets}, {"mode", mode}, {"precision", precision}, {"base_dtype", mode == "lora" ? base_dtype : "fp32"},
                        {"checkpointing", checkpointing}, {"mb", mb}, {"accum", accum}, {"seq", seq},
                        {"params_M", model.parameter_count() / 1e6}, {"trainable_M", trainable / 1e6},
                        {"step_s_med", s.median}, {"step_s_min", s.min}, {"step_s_max", s.max},
                        {"tok_s_med", tokens / s.median},
                        {"mfu", tokens / s.median * flop_per_token / (ceiling * 1e9)}, {"matmul_ceiling_gflops", ceiling},
                        {"peak_rss_MiB", peak_rss / 1048576.0},
                        {"counted_peak_MiB", mem.total_peak / 1048576.0}, {"peak_by_category_MiB", by_cat},
                        {"loss", loss}};
  fmt::print("{}\n", out.dump());
  return 0;
}
