// The run configuration: every key a YAML config or a `key=value` override may set, with its
// type, default and meaning, in one table (config.cpp). Unknown keys, wrong types and values
// out of range are ConfigErrors naming the key.
#pragma once
#include <string>
#include <vector>

#include "models/gpt2.h"

namespace bb {

struct RunConfig {
  std::string model_type = "gpt2";  // model.type
  GPT2Config model;
  struct Train {
    int64_t micro_batch_size = 16;
    int64_t grad_accum_steps = 4;
    int64_t steps = 200;
    double lr = 1e-3;
    std::string schedule = "cosine";
    int64_t warmup_steps = 20;
    double min_lr_ratio = 0.1;
    std::string optimizer = "adamw";
    double weight_decay = 0.1;
    double beta1 = 0.9, beta2 = 0.95;
    double momentum = 0.9;
    double grad_clip = 1.0;
    std::string precision = "fp32";
    int64_t seed = 1337;
    int64_t log_every = 10;
    int64_t eval_every = 50;
    int64_t eval_batches = 8;
    int64_t checkpoint_every = 50;
  } train;
  struct Data {
    std::string path = "/usr/share/games/fortunes";
    std::string format = "text";
    std::string separator = "%";
    double val_fraction = 0.05;
    std::string tokenizer = "byte";
  } data;
  struct Sample {
    std::string prompt = "The ";
    int64_t max_new_tokens = 200;
    double temperature = 0.8;
    int64_t top_k = 40;
  } sample;
  std::string out_dir = "runs/default";
};

struct ConfigKey {
  std::string name;     // "train.lr"
  std::string type;     // "int", "float", "string"
  std::string doc;
};

// Every key, in documentation order.
std::vector<ConfigKey> config_keys();

// Applies a YAML document (nested maps) to cfg; `source` names it in errors.
void apply_yaml(RunConfig& cfg, const std::string& yaml_text, const std::string& source);
// Applies "key=value".
void apply_override(RunConfig& cfg, const std::string& assignment);
// Checks ranges and combinations; throws ConfigError naming the key.
void validate(const RunConfig& cfg);
// The resolved configuration as YAML (stored in checkpoints, printed at start).
std::string to_yaml(const RunConfig& cfg);

// The built-in default job (also in configs/default.yaml).
extern const char* kDefaultConfigYaml;

// Loads CONFIG (or the default job when empty) and applies the overrides in order.
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides);

}  // namespace bb
