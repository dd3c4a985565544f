// The run configuration: every key a YAML config or a `key=value` override may set, with its
// type, default and meaning, in one table (config.cpp). Unknown keys, wrong types and values
// out of range are ConfigErrors naming the key.
#pragma once
#include <string>
#include <vector>

#include "models/gpt2.h"

namespace bb {

// The member defaults are the default job's (kDefaultConfigYaml, configs/default.yaml): a
// YAML file and the default job start from the same values (a test holds them equal).
struct RunConfig {
  std::string model_type = "gpt2";  // model.type
  GPT2Config model{.n_layer = 4, .n_head = 4, .n_embd = 128, .block_size = 128, .vocab_size = 257};
  // Llama's keys beyond the shared ones (n_layer, n_head, n_embd, block_size, vocab_size).
  struct Llama {
    int64_t intermediate_size = 0;  // 0: 8/3 of n_embd rounded up to a multiple of 32
    int64_t n_kv_head = 0;          // 0: n_head
    double rope_theta = 10000.0;
    double rms_norm_eps = 1e-5;
    int64_t tie_word_embeddings = 0;
  } llama;
  std::string model_init;  // model.init: a Hugging Face model folder to start from
  struct Lora {
    int64_t r = 0;  // 0: off
    double alpha = 16;
    double dropout = 0.0;
    std::string target_modules = "c_attn|q_proj|v_proj";
    std::string base_dtype = "fp32";  // fp32 or bf16 (frozen base weights)
  } lora;
  struct Train {
    int64_t micro_batch_size = 16;
    int64_t grad_accum_steps = 4;
    int64_t steps = 200;
    double lr = 0.002;
    std::string schedule = "cosine";
    int64_t warmup_steps = 20;
    double min_lr_ratio = 0.1;
    std::string optimizer = "adamw";
    double weight_decay = 0.1;
    double beta1 = 0.9, beta2 = 0.95;
    double momentum = 0.9;
    double grad_clip = 1.0;
    std::string precision = "fp32";
    std::string checkpointing = "none";
    std::string lr_scaling = "none";      // none, linear or sqrt
    int64_t lr_reference_batch = 0;       // effective batch (sequences) that train.lr was tuned at
    int64_t seed = 1337;
    int64_t log_every = 10;
    int64_t eval_every = 50;
    int64_t eval_batches = 8;
    int64_t checkpoint_every = 50;
    bool profile = false;                 // time every kernel of steps 2-4 and print the table
  } train;
  struct Data {
    std::string path = "/usr/share/games/fortunes";
    std::string format = "text";
    std::string separator = "%";
    double val_fraction = 0.05;
    std::string tokenizer = "byte";
    std::string chat_template;         // instruct: a template file ("": the model's own, else bigbatch's)
    std::string train_on = "assistant";  // instruct chats: assistant turns, or all
    std::string too_long = "error";      // instruct: an example past the block size: error, truncate or drop
    bool packing = false;                // documents, instruct: examples end to end in each row
  } data;
  struct Sample {
    std::string prompt = "The ";
    int64_t max_new_tokens = 200;
    double temperature = 0.8;
    int64_t top_k = 40;
  } sample;
  // Vision models and image data (model.type resnet or mobilenetv2; docs/vision.md).
  struct Vision {
    double width = 1.0;               // model.width: channel multiplier
    int64_t depth = 1;                // model.depth: blocks per stage
    int64_t classes = 10;             // model.classes
    std::string batchnorm = "micro";  // model.batchnorm: micro, frozen or group
    int64_t norm_groups = 8;          // model.norm_groups: GroupNorm groups (batchnorm=group)
    std::string test_path;            // data.test_path (image-folder; fashion-mnist: data.path's t10k files)
    int64_t limit = 0;                // data.limit: first N training images (0: all)
    int64_t test_limit = 0;           // data.test_limit
    int64_t crop_padding = 0;         // data.crop_padding
    int64_t flip = 0;                 // data.flip
    std::string mean, std;            // data.mean, data.std ("": measured on the training set)
    int64_t epochs = 0;               // train.epochs (0: train.steps decides; see resolve_length)
  } vision;
  // Data parallelism over MPI ranks (docs/distributed.md); ignored by a single process.
  struct Dist {
    double bucket_mb = 25;    // gradient bucket size (MiB)
    double timeout_s = 600;   // a rank silent this long is declared dead
    int64_t zero = 0;         // 1: shard the optimizer state over the ranks (ZeRO-1)
  } dist;
  std::string out_dir = "runs/default";
  bool report = true;  // train writes out_dir/report.html at each checkpoint and at the end
};

struct ConfigKey {
  std::string name;     // "train.lr"
  std::string type;     // "int", "float", "bool", "string"
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
// Every key with its value as text ("train.lr" -> "0.002"), in documentation order: what a
// run's report compares between runs.
std::vector<std::pair<std::string, std::string>> config_values(const RunConfig& cfg);

// The built-in default job (also in configs/default.yaml).
extern const char* kDefaultConfigYaml;

// train.steps or train.epochs, whichever the command line names: train.steps=N there replaces
// a file's train.epochs (so it is not silently ignored); naming both, with epochs > 0, is a
// ConfigError. Without either on the command line, train.epochs > 0 decides.
void resolve_length(RunConfig& cfg, const std::vector<std::string>& overrides);

// Loads CONFIG (or the default job when empty) and applies the overrides in order.
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides);

}  // namespace bb
