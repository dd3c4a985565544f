// Job assembly from the configuration.
#include "train/job.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/grad_mode.h"
#include "core/storage.h"
#include "data/instruct_dataset.h"
#include "data/tokenizer_files.h"
#include "io/atomic_file.h"
#include "io/gguf_import.h"
#include "io/hf_model.h"
#include "models/gpt2.h"
#include "models/llama.h"
#include "train/epochs.h"

namespace bb {

namespace {

// The batch's rows as the data laid them out: packed rows carry each token's position in its
// own document.
Tensor batch_loss(const CausalLM& model, const Batch& b, const Context& ctx, int64_t* count) {
  Context c = ctx;
  c.positions = b.positions;
  return model.loss(b.tokens, b.targets, c, count, kIgnoreIndex);
}

}  // namespace

LossFn lm_loss(const CausalLM& model) {
  return [&model](const Batch& b, const Context& ctx, int64_t* count) { return batch_loss(model, b, ctx, count); };
}

std::unique_ptr<Optimizer> make_optimizer(const RunConfig& cfg, const Module& model, int rank, int ranks) {
  auto groups = default_param_groups(model.named_parameters());
  if (cfg.dist.zero == 1 && ranks > 1) {
    // ZeRO-1: this rank keeps state for, and updates, its pieces of the buckets only.
    std::vector<int64_t> numels;
    for (const ParamGroup& g : groups) numels.push_back(g.param.numel());
    const auto pieces = zero_pieces(numels, make_trainer_options(cfg).bucket_bytes, rank, ranks);
    for (size_t i = 0; i < groups.size(); ++i) {
      groups[i].offset = pieces[i].offset;
      groups[i].length = pieces[i].length;
    }
  }
  if (cfg.train.optimizer == "sgd")
    return std::make_unique<SGD>(groups, SGDOptions{static_cast<float>(cfg.train.momentum),
                                                    static_cast<float>(cfg.train.weight_decay), false});
  return std::make_unique<AdamW>(groups, AdamWOptions{static_cast<float>(cfg.train.beta1),
                                                      static_cast<float>(cfg.train.beta2), 1e-8f,
                                                      static_cast<float>(cfg.train.weight_decay)});
}

double scaled_lr(const RunConfig& cfg) {
  if (cfg.train.lr_scaling == "none") return cfg.train.lr;
  const double ratio = static_cast<double>(effective_batch(cfg)) /
                       static_cast<double>(cfg.train.lr_reference_batch);
  return cfg.train.lr * (cfg.train.lr_scaling == "sqrt" ? std::sqrt(ratio) : ratio);
}

Schedule make_schedule(const RunConfig& cfg) {
  Schedule s;
  s.kind = cfg.train.schedule;
  s.lr = static_cast<float>(scaled_lr(cfg));
  s.warmup_steps = cfg.train.warmup_steps;
  s.total_steps = cfg.train.steps;
  s.min_lr_ratio = static_cast<float>(cfg.train.min_lr_ratio);
  return s;
}

TrainerOptions make_trainer_options(const RunConfig& cfg) {
  TrainerOptions o;
  o.micro_batch = cfg.train.micro_batch_size;
  o.grad_accum = cfg.train.grad_accum_steps;
  o.grad_clip = static_cast<float>(cfg.train.grad_clip);
  o.precision = parse_precision(cfg.train.precision);
  o.seed = static_cast<uint64_t>(cfg.train.seed);
  o.bucket_bytes = static_cast<int64_t>(cfg.dist.bucket_mb * (1 << 20));
  o.zero = cfg.dist.zero == 1;
  return o;
}

int64_t effective_batch(const RunConfig& cfg) {
  return cfg.train.micro_batch_size * cfg.train.grad_accum_steps * world().size();
}

LlamaConfig llama_config(const RunConfig& cfg, const Tokenizer* tok) {
  LlamaConfig c;
  if (tok) {
    c.eos_token_id = tok->eos_id();
    c.bos_token_id = tok->bos_id() >= 0 ? tok->bos_id() : tok->eos_id();
  }
  c.hidden_size = cfg.model.n_embd;
  c.num_hidden_layers = cfg.model.n_layer;
  c.num_attention_heads = cfg.model.n_head;
  c.num_key_value_heads = cfg.llama.n_kv_head > 0 ? cfg.llama.n_kv_head : cfg.model.n_head;
  c.intermediate_size = cfg.llama.intermediate_size > 0 ? cfg.llama.intermediate_size
                                                        : (8 * cfg.model.n_embd / 3 + 31) / 32 * 32;
  c.vocab_size = cfg.model.vocab_size;
  c.max_position_embeddings = cfg.model.block_size;
  c.rope_theta = static_cast<float>(cfg.llama.rope_theta);
  c.rms_norm_eps = static_cast<float>(cfg.llama.rms_norm_eps);
  c.tie_word_embeddings = cfg.llama.tie_word_embeddings != 0;
  return c;
}

std::unique_ptr<CausalLM> make_causal_lm(const RunConfig& cfg, Device device, const Tokenizer* tok) {
  const bool lora = cfg.lora.r > 0;
  const LoraOptions lo = lora ? lora_options(cfg) : LoraOptions{};
  std::unique_ptr<CausalLM> model;
  const uint64_t seed = static_cast<uint64_t>(cfg.train.seed);
  if (!cfg.model_init.empty()) model = load_causal_lm(cfg.model_init, device, lora ? lo.base_dtype : DType::F32);
  else if (cfg.model_type == "gpt2") model = std::make_unique<GPT2>(cfg.model, seed, device);
  else if (cfg.model_type == "llama") model = std::make_unique<Llama>(llama_config(cfg, tok), seed, device);
  else throw ConfigError(fmt::format("model.type '{}' is not a language model here (gpt2, llama)", cfg.model_type));
  if (lora) apply_lora(*model, lo);
  model->set_checkpointing(CheckpointPolicy::parse(cfg.train.checkpointing));
  return model;
}

namespace {
bool has_tokenizer_files(const std::string& dir) {
  namespace fs = std::filesystem;
  for (const char* f : {"tokenizer.json", "tokenizer.model", "vocab.json"})
    if (fs::exists(fs::path(dir) / f)) return true;
  return false;
}
}  // namespace

std::unique_ptr<Tokenizer> tokenizer_for_model(const std::string& dir) {
  if (is_gguf_path(dir)) return gguf_tokenizer(dir);
  if (has_tokenizer_files(dir)) return load_tokenizer(dir);
  return std::make_unique<ByteTokenizer>();
}

std::string tokenizer_source(const RunConfig& cfg) {
  if (!cfg.model_init.empty() && has_tokenizer_files(cfg.model_init)) return cfg.model_init;
  return cfg.data.tokenizer == "byte" ? "" : cfg.data.tokenizer;
}

void copy_tokenizer_files(const RunConfig& cfg, const std::string& to) {
  namespace fs = std::filesystem;
  const std::string from = tokenizer_source(cfg);
  if (!from.empty() && !fs::equivalent(from, to))
    for (const char* f : kTokenizerFiles)
      if (fs::exists(fs::path(from) / f))
        write_text_atomic((fs::path(to) / f).string(), read_text_file((fs::path(from) / f).string()));
  // The model learnt the template it trained with: generate --chat must prompt it the same way
  // (Transformers reads chat_template.jinja before tokenizer_config.json's).
  if (!cfg.data.chat_template.empty())
    write_text_atomic((fs::path(to) / "chat_template.jinja").string(), read_text_file(cfg.data.chat_template));
}

LoraOptions lora_options(const RunConfig& cfg) {
  LoraOptions o;
  o.r = cfg.lora.r;
  o.alpha = static_cast<float>(cfg.lora.alpha);
  o.dropout = static_cast<float>(cfg.lora.dropout);
  o.targets = split_target_modules(cfg.lora.target_modules);
  o.base_dtype = cfg.lora.base_dtype == "bf16"   ? DType::BF16
                 : cfg.lora.base_dtype == "q8_0" ? DType::Q8_0
                 : cfg.lora.base_dtype == "q4_0" ? DType::Q4_0
                                                 : DType::F32;
  o.seed = static_cast<uint64_t>(cfg.train.seed);
  return o;
}

TextCorpus load_corpus(const TextDataOptions& d, const Tokenizer& tok) {
  return d.format == "instruct" ? load_instruct_corpus(d, tok) : load_text_corpus(d, tok);
}

JobData load_job_data(const RunConfig& cfg) {
  JobData data;
  // model.init: its tokenizer files, when the folder has them.
  const std::string tokenizer_dir = tokenizer_source(cfg);
  // A GGUF file carries its tokenizer in its keys (gguf_tokenizer says which it reads).
  if (tokenizer_dir.empty() && is_gguf_path(cfg.model_init)) data.tokenizer = gguf_tokenizer(cfg.model_init);
  else data.tokenizer = make_tokenizer(tokenizer_dir.empty() ? "byte" : tokenizer_dir);
  {
    // The model's position limit caps the windows; its shapes alone tell it.
    UncountedMeta shapes_only;
    data.block_size = std::min(cfg.model.block_size, make_causal_lm(cfg, Device::Meta, data.tokenizer.get())->max_positions());
  }
  TextDataOptions d;
  d.path = cfg.data.path;
  d.format = cfg.data.format;
  d.separator = cfg.data.separator;
  d.val_fraction = cfg.data.val_fraction;
  d.block_size = data.block_size;
  d.seed = static_cast<uint64_t>(cfg.train.seed);
  d.tokenizer_dir = tokenizer_dir;
  d.chat_template = cfg.data.chat_template;
  d.train_on = cfg.data.train_on;
  d.too_long = cfg.data.too_long;
  d.packing = cfg.data.packing;
  data.corpus = load_corpus(d, *data.tokenizer);
  return data;
}

std::unique_ptr<Job> make_job(const RunConfig& cfg) { return make_job(cfg, load_job_data(cfg)); }

namespace {

std::unique_ptr<Job> build_job(const RunConfig& cfg, JobData data, Communicator& comm) {
  auto job = std::make_unique<Job>();
  job->comm = &comm;
  job->cfg = cfg;
  job->tokenizer = std::move(data.tokenizer);
  job->corpus = std::move(data.corpus);
  job->block_size = data.block_size;
  job->model = make_causal_lm(cfg, Device::CPU, job->tokenizer.get());
  if (job->model->vocab_size() < job->tokenizer->vocab_size())
    throw ConfigError(fmt::format("model.vocab_size ({}) is smaller than the {} tokenizer's vocabulary ({})",
                                  job->model->vocab_size(), job->tokenizer->name(), job->tokenizer->vocab_size()));
  if (cfg.lora.r > 0) job->lora = lora_options(cfg);  // applied by make_causal_lm; kept for saving
  job->total_steps = cfg.train.steps;
  if (cfg.vision.epochs > 0) {
    if (job->corpus.train->size() == 0)
      throw ConfigError(fmt::format("train.epochs needs data that has epochs (data.format documents or instruct); "
                                    "data.format {} is random windows, so set train.steps", cfg.data.format));
    job->total_steps = steps_for_epochs(cfg.vision.epochs, job->corpus.train->size(), effective_batch(cfg));
  }
  RunConfig sched_cfg = cfg;
  sched_cfg.train.steps = job->total_steps;  // the schedule spans the whole run
  job->optimizer = make_optimizer(cfg, *job->model, job->comm->rank(), job->comm->size());
  job->schedule = make_schedule(sched_cfg);
  TrainerOptions o = make_trainer_options(cfg);
  o.sample_slots = job->block_size;
  job->trainer = std::make_unique<Trainer>(lm_loss(*job->model), *job->optimizer, *job->corpus.train,
                                           job->schedule, o, *job->comm);
  return job;
}

}  // namespace

std::unique_ptr<Job> make_job(const RunConfig& cfg, JobData data) { return build_job(cfg, std::move(data), world()); }

std::unique_ptr<Job> make_job(const RunConfig& cfg, Communicator& comm) {
  return build_job(cfg, load_job_data(cfg), comm);
}

int64_t Job::next_window() const {
  return window_samples(trainer->samples_done(), cfg.vision.epochs > 0 ? corpus.train->size() : 0,
                        trainer->window_size());
}

double evaluate(const CausalLM& model, const Dataset& data, int64_t batches, int64_t micro_batch,
                Precision precision) {
  NoGradGuard no_grad;
  Context ctx{.compute = compute_dtype(precision), .training = false};
  double total = 0;
  int64_t tokens = 0;
  for (int64_t i = 0; i < batches; ++i) {
    Batch b = data.batch(i * micro_batch, micro_batch);
    int64_t n = 0;
    total += batch_loss(model, b, ctx, &n).item();
    tokens += n;
  }
  // A mean over no tokens would read as a perfect 0 loss (perplexity 1).
  if (tokens == 0)
    throw FormatError(fmt::format("no tokens to evaluate: {} micro-batches of {} hold no target token (are all "
                                  "completions beyond the model's block size?)", batches, micro_batch));
  return total / static_cast<double>(tokens);
}

}  // namespace bb
