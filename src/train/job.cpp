// Job assembly from the configuration.
#include "train/job.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/grad_mode.h"
#include "models/gpt2.h"

namespace bb {

LossFn lm_loss(const CausalLM& model) {
  return [&model](const Batch& b, const Context& ctx, int64_t* count) {
    return model.loss(b.tokens, b.targets, ctx, count, kIgnoreIndex);
  };
}

std::unique_ptr<Optimizer> make_optimizer(const RunConfig& cfg, const Module& model) {
  auto groups = default_param_groups(model.named_parameters());
  if (cfg.train.optimizer == "sgd")
    return std::make_unique<SGD>(groups, SGDOptions{static_cast<float>(cfg.train.momentum),
                                                    static_cast<float>(cfg.train.weight_decay), false});
  return std::make_unique<AdamW>(groups, AdamWOptions{static_cast<float>(cfg.train.beta1),
                                                      static_cast<float>(cfg.train.beta2), 1e-8f,
                                                      static_cast<float>(cfg.train.weight_decay)});
}

Schedule make_schedule(const RunConfig& cfg) {
  Schedule s;
  s.kind = cfg.train.schedule;
  s.lr = static_cast<float>(cfg.train.lr);
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
  return o;
}

std::unique_ptr<CausalLM> make_causal_lm(const RunConfig& cfg, Device device) {
  if (cfg.model_type == "gpt2") return std::make_unique<GPT2>(cfg.model, static_cast<uint64_t>(cfg.train.seed), device);
  throw ConfigError(fmt::format("model.type '{}' is not a language model here (gpt2)", cfg.model_type));
}

std::unique_ptr<Job> make_job(const RunConfig& cfg) {
  auto job = std::make_unique<Job>();
  job->cfg = cfg;
  job->tokenizer = make_tokenizer(cfg.data.tokenizer);
  if (cfg.model.vocab_size < job->tokenizer->vocab_size())
    throw ConfigError(fmt::format("model.vocab_size ({}) is smaller than the {} tokenizer's vocabulary ({})",
                                  cfg.model.vocab_size, job->tokenizer->name(), job->tokenizer->vocab_size()));
  TextDataOptions d;
  d.path = cfg.data.path;
  d.format = cfg.data.format;
  d.separator = cfg.data.separator;
  d.val_fraction = cfg.data.val_fraction;
  d.block_size = cfg.model.block_size;
  d.seed = static_cast<uint64_t>(cfg.train.seed);
  job->corpus = load_text_corpus(d, *job->tokenizer);
  job->model = make_causal_lm(cfg);
  job->optimizer = make_optimizer(cfg, *job->model);
  job->schedule = make_schedule(cfg);
  job->trainer = std::make_unique<Trainer>(lm_loss(*job->model), *job->optimizer, *job->corpus.train,
                                           job->schedule, make_trainer_options(cfg), job->comm);
  return job;
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
    total += model.loss(b.tokens, b.targets, ctx, &n, kIgnoreIndex).item();
    tokens += n;
  }
  return tokens ? total / static_cast<double>(tokens) : 0.0;
}

}  // namespace bb
