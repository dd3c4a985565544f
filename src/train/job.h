// A training job assembled from a RunConfig: tokenizer, corpus, GPT-2, optimizer, schedule
// and trainer, wired the same way for `train`, `verify` and the benchmarks.
#pragma once
#include <memory>

#include "data/dataset.h"
#include "data/tokenizer.h"
#include "dist/communicator.h"
#include "models/causal_lm.h"
#include "nn/lora.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "train/config.h"
#include "train/trainer.h"

namespace bb {

struct Job {
  RunConfig cfg;
  std::unique_ptr<Tokenizer> tokenizer;
  TextCorpus corpus;
  std::unique_ptr<CausalLM> model;
  std::unique_ptr<Optimizer> optimizer;
  Schedule schedule;
  Communicator* comm = &world();  // the ranks of mpirun, or this process alone
  std::unique_ptr<Trainer> trainer;
  LoraOptions lora;  // when cfg.lora.r > 0: the adapters the model carries (only they train)
  int64_t block_size = 0;  // longest training sequence (model.block_size, capped by the model)
  int64_t total_steps = 0;  // train.steps, or what train.epochs makes of it (train/epochs.h)
  // Samples of the next window: with train.epochs, cut at the epoch's end.
  int64_t next_window() const;
};

// The tokenizer files of a Hugging Face model folder when it has some (tokenizer.json,
// tokenizer.model, vocab.json + merges.txt); else the byte tokenizer.
std::unique_ptr<Tokenizer> tokenizer_for_model(const std::string& dir);
// The folder the run's tokenizer files come from: model.init, else data.tokenizer when it is
// a folder; empty for the byte tokenizer.
std::string tokenizer_source(const RunConfig& cfg);
// The files of a model folder that describe its tokenizer and chat format.
inline constexpr const char* kTokenizerFiles[] = {"tokenizer.json",        "tokenizer.model",         "vocab.json",
                                                  "merges.txt",            "tokenizer_config.json", "special_tokens_map.json",
                                                  "chat_template.jinja"};
// Copies the tokenizer files of tokenizer_source(cfg) (tokenizer.json, tokenizer.model,
// vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json,
// chat_template.jinja) into `to`, each atomically, and data.chat_template as
// chat_template.jinja, so a saved model or adapter folder carries the tokenizer and chat
// format it was trained with.
void copy_tokenizer_files(const RunConfig& cfg, const std::string& to);
// LoRA options from the lora.* keys.
LoraOptions lora_options(const RunConfig& cfg);

// What a run reads before its model exists: the tokenizer and the tokenized corpus, with
// windows of the run's block size. Loaded before planning, so that the process the planner
// measures already holds them.
struct JobData {
  std::unique_ptr<Tokenizer> tokenizer;
  TextCorpus corpus;
  int64_t block_size = 0;
};
JobData load_job_data(const RunConfig& cfg);

// Builds the job; the model starts from the seeded initialisation (or model.init).
std::unique_ptr<Job> make_job(const RunConfig& cfg);
// The same over data already loaded (cfg may differ from the one that loaded it only in the
// keys a plan sets: micro-batch, accumulation, checkpointing, precision).
std::unique_ptr<Job> make_job(const RunConfig& cfg, JobData data);
// The same, training over `comm` instead of world() (verify's one-process reference).
std::unique_ptr<Job> make_job(const RunConfig& cfg, Communicator& comm);
// The language model cfg.model_type names, freshly initialised from cfg.train.seed.
// The run's model: loaded from model.init (its Linear weights straight into bf16 for a bf16
// LoRA base) or built from model.*; LoRA applied when lora.r > 0; checkpointing set. On Meta
// for the planner, shapes only.
// A new Llama's config.json names `tok`'s BOS and EOS ids (a tokenizer without a BOS, like the
// byte one, starts sequences with its EOS, as GPT-2 does); none when tok is null.
std::unique_ptr<CausalLM> make_causal_lm(const RunConfig& cfg, Device device = Device::CPU,
                                         const Tokenizer* tok = nullptr);

// The loss function the trainer calls for a language model.
LossFn lm_loss(const CausalLM& model);
// The optimizer of cfg.train.optimizer; with dist.zero=1, over the pieces that `rank` of
// `ranks` owns (dist/grad_sync.h).
std::unique_ptr<Optimizer> make_optimizer(const RunConfig& cfg, const Module& model, int rank = 0, int ranks = 1);
Schedule make_schedule(const RunConfig& cfg);
// train.lr after train.lr_scaling: lr * (B_eff / B_ref) (linear) or its square root (sqrt).
double scaled_lr(const RunConfig& cfg);
TrainerOptions make_trainer_options(const RunConfig& cfg);
// Samples an optimizer step learns from: micro_batch_size * grad_accum_steps * ranks.
int64_t effective_batch(const RunConfig& cfg);

// The corpus of d.format: text, documents, or instruct (JSON lines; loss on completions).
TextCorpus load_corpus(const TextDataOptions& d, const Tokenizer& tok);

// Mean loss per target token over `batches` micro-batches of the dataset (no gradients);
// FormatError when they hold no target token.
double evaluate(const CausalLM& model, const Dataset& data, int64_t batches, int64_t micro_batch,
                Precision precision);

}  // namespace bb
