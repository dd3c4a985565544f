// A training job assembled from a RunConfig: tokenizer, corpus, GPT-2, optimizer, schedule
// and trainer, wired the same way for `train`, `verify` and the benchmarks.
#pragma once
#include <memory>

#include "data/dataset.h"
#include "data/tokenizer.h"
#include "dist/communicator.h"
#include "models/causal_lm.h"
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
  SingleProcess comm;
  std::unique_ptr<Trainer> trainer;
};

// Builds the job; the model starts from the seeded initialisation.
std::unique_ptr<Job> make_job(const RunConfig& cfg);
// The language model cfg.model_type names, freshly initialised from cfg.train.seed.
std::unique_ptr<CausalLM> make_causal_lm(const RunConfig& cfg, Device device = Device::CPU);

// The loss function the trainer calls for a language model.
LossFn lm_loss(const CausalLM& model);
std::unique_ptr<Optimizer> make_optimizer(const RunConfig& cfg, const Module& model);
Schedule make_schedule(const RunConfig& cfg);
TrainerOptions make_trainer_options(const RunConfig& cfg);

// Mean loss per target token over `batches` micro-batches of the dataset (no gradients).
double evaluate(const CausalLM& model, const Dataset& data, int64_t batches, int64_t micro_batch,
                Precision precision);

}  // namespace bb
