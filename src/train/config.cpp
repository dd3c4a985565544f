// The configuration key table and YAML / override parsing.
#include "train/config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <functional>
#include <variant>

#include "core/error.h"
#include "io/atomic_file.h"
#include "nn/checkpoint_policy.h"
#include "train/precision.h"

namespace bb {

const char* kDefaultConfigYaml = R"(# The default job: a small GPT learns the fortune cookies of Debian's fortunes package,
# byte by byte, with an effective batch of 64 sequences reached by 4 micro-batches of 16.
model:
  n_layer: 4
  n_head: 4
  n_embd: 128
  block_size: 128
  vocab_size: 257
  dropout: 0.0
train:
  micro_batch_size: 16
  grad_accum_steps: 4
  steps: 200
  lr: 0.002
  warmup_steps: 20
  weight_decay: 0.1
  precision: fp32
  log_every: 10
  eval_every: 50
  checkpoint_every: 50
data:
  path: /usr/share/games/fortunes
  format: text
  tokenizer: byte
sample:
  prompt: "The "
  max_new_tokens: 200
out_dir: runs/default
)";

namespace {

using Slot = std::variant<int64_t*, double*, float*, bool*, std::string*>;

struct Field {
  ConfigKey key;
  Slot slot;
};

std::vector<Field> fields(RunConfig& c) {
  return {
      {{"model.type", "string", "gpt2 or llama"}, &c.model_type},
      {{"model.n_layer", "int", "transformer blocks"}, &c.model.n_layer},
      {{"model.n_head", "int", "attention heads"}, &c.model.n_head},
      {{"model.n_embd", "int", "width of the residual stream"}, &c.model.n_embd},
      {{"model.block_size", "int", "longest sequence (n_positions)"}, &c.model.block_size},
      {{"model.vocab_size", "int", "vocabulary size (257 for the byte tokenizer)"}, &c.model.vocab_size},
      {{"model.dropout", "float", "residual and embedding dropout"}, &c.model.dropout},
      {{"model.layer_norm_epsilon", "float", "gpt2: LayerNorm epsilon"}, &c.model.layer_norm_epsilon},
      {{"model.init", "string", "Hugging Face model folder, or GGUF file (.gguf), to start from (its config replaces model.*)"}, &c.model_init},
      {{"model.intermediate_size", "int", "llama: MLP width (0: about 8/3 n_embd)"}, &c.llama.intermediate_size},
      {{"model.n_kv_head", "int", "llama: key/value heads (0: n_head)"}, &c.llama.n_kv_head},
      {{"model.rope_theta", "float", "llama: rotary embedding base"}, &c.llama.rope_theta},
      {{"model.rms_norm_eps", "float", "llama: RMSNorm epsilon"}, &c.llama.rms_norm_eps},
      {{"model.tie_word_embeddings", "int", "llama: 1 shares the LM head with embed_tokens"}, &c.llama.tie_word_embeddings},
      {{"model.width", "float", "vision: channel multiplier (resnet at 1: stages of 32, 64, 128 channels)"}, &c.vision.width},
      {{"model.depth", "int", "vision: blocks per stage"}, &c.vision.depth},
      {{"model.classes", "int", "vision: classes"}, &c.vision.classes},
      {{"model.norm_groups", "int", "vision: GroupNorm groups when model.batchnorm is group"}, &c.vision.norm_groups},
      {{"model.batchnorm", "string", "vision, K > 1: micro (per-micro-batch statistics, running ones merged per window; the default), frozen or group"}, &c.vision.batchnorm},
      {{"lora.r", "int", "LoRA rank (0: full fine-tuning)"}, &c.lora.r},
      {{"lora.alpha", "float", "LoRA scale numerator (update scaled by alpha / r)"}, &c.lora.alpha},
      {{"lora.dropout", "float", "dropout on the LoRA path's input"}, &c.lora.dropout},
      {{"lora.target_modules", "string", "layers to adapt: names separated by | or , matched as suffixes"}, &c.lora.target_modules},
      {{"lora.base_dtype", "string", "frozen base weights: fp32, bf16, q8_0 or q4_0 (ggml blocks)"}, &c.lora.base_dtype},
      {{"train.micro_batch_size", "int", "sequences per micro-batch (B)"}, &c.train.micro_batch_size},
      {{"train.grad_accum_steps", "int", "micro-batches per optimizer step (K)"}, &c.train.grad_accum_steps},
      {{"train.steps", "int", "optimizer steps to run"}, &c.train.steps},
      {{"train.lr", "float", "peak learning rate"}, &c.train.lr},
      {{"train.schedule", "string", "cosine (warmup then cosine decay) or constant"}, &c.train.schedule},
      {{"train.warmup_steps", "int", "linear warmup steps"}, &c.train.warmup_steps},
      {{"train.min_lr_ratio", "float", "cosine floor as a fraction of lr"}, &c.train.min_lr_ratio},
      {{"train.optimizer", "string", "adamw or sgd"}, &c.train.optimizer},
      {{"train.weight_decay", "float", "decoupled weight decay (not on biases, norms, embeddings)"}, &c.train.weight_decay},
      {{"train.beta1", "float", "AdamW beta1"}, &c.train.beta1},
      {{"train.beta2", "float", "AdamW beta2"}, &c.train.beta2},
      {{"train.momentum", "float", "SGD momentum"}, &c.train.momentum},
      {{"train.grad_clip", "float", "max global gradient norm after accumulation (0: off)"}, &c.train.grad_clip},
      {{"train.precision", "string", "fp32, bf16 or fp16 (with dynamic loss scaling)"}, &c.train.precision},
      {{"train.checkpointing", "string", "activation checkpointing: none, full, every:N or selective"}, &c.train.checkpointing},
      {{"train.lr_scaling", "string", "scale train.lr from train.lr_reference_batch: none, linear or sqrt"}, &c.train.lr_scaling},
      {{"train.lr_reference_batch", "int", "effective batch (sequences) train.lr was tuned at"}, &c.train.lr_reference_batch},
      {{"train.epochs", "int", "passes over the training images, documents or instruction examples; each epoch ends with a partial window (0: train.steps decides; train.steps on the command line wins)"}, &c.vision.epochs},
      {{"train.seed", "int", "seed of weights, data order and dropout"}, &c.train.seed},
      {{"train.log_every", "int", "steps between progress lines"}, &c.train.log_every},
      {{"train.eval_every", "int", "steps between validation losses (0: off)"}, &c.train.eval_every},
      {{"train.eval_batches", "int", "micro-batches per validation"}, &c.train.eval_batches},
      {{"train.checkpoint_every", "int", "steps between checkpoints (0: only at the end)"}, &c.train.checkpoint_every},
      {{"train.profile", "bool", "time every kernel of steps 2 to 4 of the run and print the time by phase and op"}, &c.train.profile},
      {{"data.path", "string", "text file, or folder of text files (gzip is read too)"}, &c.data.path},
      {{"data.format", "string", "text (random windows), documents (one padded document a sample) or instruct (JSON lines, loss on completions)"}, &c.data.format},
      {{"data.separator", "string", "a line equal to this ends a document (empty: blank line)"}, &c.data.separator},
      {{"data.val_fraction", "float", "share of the corpus held out for validation"}, &c.data.val_fraction},
      {{"data.tokenizer", "string", "byte, or a model folder (tokenizer.json, vocab.json + merges.txt, or tokenizer.model)"}, &c.data.tokenizer},
      {{"data.chat_template", "string", "instruct chats: a Jinja chat template file (empty: the model's own, from chat_template.jinja or tokenizer_config.json; bigbatch's <|role|> lines when it has none)"}, &c.data.chat_template},
      {{"data.train_on", "string", "instruct chats: assistant (loss on the assistant's turns) or all (every turn)"}, &c.data.train_on},
      {{"data.too_long", "string", "instruct: an example longer than the block size is an error, or is cut to it (truncate), or left out (drop)"}, &c.data.too_long},
      {{"data.packing", "bool", "documents, instruct: pack several examples end to end in each row (attention and positions stay within each example)"}, &c.data.packing},
      {{"data.test_path", "string", "vision image-folder: the test images (fashion-mnist: the t10k files of data.path)"}, &c.vision.test_path},
      {{"data.limit", "int", "vision: use only the first N training images (0: all)"}, &c.vision.limit},
      {{"data.test_limit", "int", "vision: use only the first N test images (0: all)"}, &c.vision.test_limit},
      {{"data.crop_padding", "int", "vision: random crop from an image zero-padded by this many pixels (0: off)"}, &c.vision.crop_padding},
      {{"data.flip", "int", "vision: 1 flips images horizontally at random"}, &c.vision.flip},
      {{"data.mean", "string", "vision: per-channel means on [0, 1] pixels, comma-separated (empty: measured)"}, &c.vision.mean},
      {{"data.std", "string", "vision: per-channel standard deviations (empty: measured)"}, &c.vision.std},
      {{"sample.prompt", "string", "prompt of the sample printed after training"}, &c.sample.prompt},
      {{"sample.max_new_tokens", "int", "tokens to sample"}, &c.sample.max_new_tokens},
      {{"sample.temperature", "float", "sampling temperature (0: greedy)"}, &c.sample.temperature},
      {{"sample.top_k", "int", "sample among the k likeliest tokens (0: all)"}, &c.sample.top_k},
      {{"dist.bucket_mb", "float", "data parallel (mpirun): MiB of gradients summed as one message, sent as soon as the last micro-batch's backward completes them"}, &c.dist.bucket_mb},
      {{"dist.timeout_s", "float", "data parallel: seconds a rank may stay silent before the job ends naming it"}, &c.dist.timeout_s},
      {{"dist.zero", "int", "data parallel: 0 (every rank holds the whole optimizer state) or 1 (ZeRO-1: each rank holds 1/N of it and updates its shard of the weights)"}, &c.dist.zero},
      {{"out_dir", "string", "run folder: metrics.jsonl, model, checkpoint"}, &c.out_dir},
      {{"report", "bool", "write out_dir/report.html (loss, memory and speed plots) at each checkpoint and at the end"}, &c.report},
  };
}

// Every float key goes through here: stod accepts "nan" and "inf", which no key means, and a
// float slot would turn 1e39 into inf.
template <typename Bad>
double parse_finite(const std::string& value, const Bad& bad) {
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(value, &pos);
  } catch (const std::out_of_range&) {
    throw bad("a finite number");  // 1e400
  } catch (const std::exception&) {
    throw bad("a number");
  }
  if (pos != value.size()) throw bad("a number");
  if (!std::isfinite(v) || !std::isfinite(static_cast<float>(v))) throw bad("a finite number");
  return v;
}

void assign(Field& f, const std::string& value, const std::string& source) {
  auto bad = [&](const char* want) {
    return ConfigError(fmt::format("{}: key '{}' wants {}, got '{}'", source, f.key.name, want, value));
  };
  std::visit(
      [&](auto* p) {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, std::string>) {
          *p = value;
        } else if constexpr (std::is_same_v<T, bool>) {
          if (value == "true") *p = true;
          else if (value == "false") *p = false;
          else throw bad("true or false");
        } else if constexpr (std::is_same_v<T, int64_t>) {
          size_t pos = 0;
          try {
            *p = std::stoll(value, &pos);
          } catch (const std::exception&) {
            throw bad("an integer");
          }
          if (pos != value.size()) throw bad("an integer");
        } else {
          *p = static_cast<T>(parse_finite(value, bad));
        }
      },
      f.slot);
}

void set_key(RunConfig& cfg, const std::string& key, const std::string& value, const std::string& source) {
  for (Field& f : fields(cfg))
    if (f.key.name == key) return assign(f, value, source);
  throw ConfigError(fmt::format("{}: unknown key '{}' (bigbatch train --help lists the keys)", source, key));
}

void walk(RunConfig& cfg, const YAML::Node& node, const std::string& prefix, const std::string& source) {
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar())  // YAML allows a map or list as a key ("? [a, b]: 1")
      throw ConfigError(fmt::format("{}: line {}: a key must be a plain name", source, it->first.Mark().line + 1));
    const std::string key = prefix.empty() ? it->first.as<std::string>() : prefix + "." + it->first.as<std::string>();
    if (it->second.IsMap()) walk(cfg, it->second, key, source);
    else if (it->second.IsScalar()) set_key(cfg, key, it->second.as<std::string>(), source);
    else if (it->second.IsNull()) set_key(cfg, key, "", source);
    else throw ConfigError(fmt::format("{}: key '{}' must be a single value", source, key));
  }
}

}  // namespace

std::vector<ConfigKey> config_keys() {
  RunConfig c;
  std::vector<ConfigKey> out;
  for (auto& f : fields(c)) out.push_back(f.key);
  return out;
}

void apply_yaml(RunConfig& cfg, const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{} is not valid YAML: {} (line {})", source, e.msg, e.mark.line + 1));
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) throw ConfigError(fmt::format("{} must be a map of keys", source));
  try {
    walk(cfg, root, "", source);
  } catch (const YAML::Exception& e) {  // a node of a shape walk does not expect
    throw ConfigError(fmt::format("{}: {} (line {})", source, e.msg, e.mark.line + 1));
  }
}

void apply_override(RunConfig& cfg, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError(fmt::format("override '{}' must look like key=value", assignment));
  set_key(cfg, assignment.substr(0, eq), assignment.substr(eq + 1), "command line");
}

void validate(const RunConfig& c) {
  c.model.validate();
  auto non_negative = [](double v, const char* key) {
    if (v < 0) throw ConfigError(fmt::format("{} must not be negative, got {}", key, v));
  };
  require_positive(c.train.micro_batch_size, "train.micro_batch_size");
  if (!(c.dist.bucket_mb > 0 && c.dist.bucket_mb <= 4096))
    throw ConfigError(fmt::format("dist.bucket_mb must lie in (0, 4096], got {}", c.dist.bucket_mb));
  if (!(c.dist.timeout_s > 0)) throw ConfigError(fmt::format("dist.timeout_s must be positive, got {}", c.dist.timeout_s));
  if (c.dist.zero != 0 && c.dist.zero != 1)
    throw ConfigError(fmt::format("dist.zero must be 0 or 1, got {}", c.dist.zero));
  require_positive(c.train.grad_accum_steps, "train.grad_accum_steps");
  require_positive(c.train.steps, "train.steps");
  if (!(c.train.lr > 0)) throw ConfigError(fmt::format("train.lr must be positive, got {}", c.train.lr));
  non_negative(c.train.warmup_steps, "train.warmup_steps");
  non_negative(c.train.weight_decay, "train.weight_decay");
  non_negative(c.train.grad_clip, "train.grad_clip");
  non_negative(c.train.log_every, "train.log_every");
  non_negative(c.train.eval_every, "train.eval_every");
  non_negative(c.train.checkpoint_every, "train.checkpoint_every");
  if (c.train.schedule != "cosine" && c.train.schedule != "constant")
    throw ConfigError(fmt::format("train.schedule '{}' is not known (cosine or constant)", c.train.schedule));
  if (c.train.optimizer != "adamw" && c.train.optimizer != "sgd")
    throw ConfigError(fmt::format("train.optimizer '{}' is not known (adamw or sgd)", c.train.optimizer));
  parse_precision(c.train.precision);
  CheckpointPolicy::parse(c.train.checkpointing);
  if (c.train.lr_scaling != "none" && c.train.lr_scaling != "linear" && c.train.lr_scaling != "sqrt")
    throw ConfigError(fmt::format("train.lr_scaling '{}' is not known (none, linear or sqrt)", c.train.lr_scaling));
  if (c.train.lr_scaling != "none" && c.train.lr_reference_batch <= 0)
    throw ConfigError("train.lr_reference_batch must be positive when train.lr_scaling is set");
  non_negative(c.lora.r, "lora.r");
  if (!(c.lora.dropout >= 0 && c.lora.dropout < 1))
    throw ConfigError(fmt::format("lora.dropout must be in [0, 1), got {}", c.lora.dropout));
  if (c.lora.base_dtype != "fp32" && c.lora.base_dtype != "bf16" && c.lora.base_dtype != "q8_0" &&
      c.lora.base_dtype != "q4_0")
    throw ConfigError(fmt::format("lora.base_dtype '{}' is not known (fp32, bf16, q8_0 or q4_0)", c.lora.base_dtype));
  if (c.lora.base_dtype != "fp32" && c.lora.r <= 0)
    throw ConfigError(fmt::format("lora.base_dtype {} is the frozen base of a LoRA run: set lora.r above 0 (full "
                                  "fine-tuning trains every weight in f32)", c.lora.base_dtype));
  if (!(c.train.beta1 >= 0 && c.train.beta1 < 1) || !(c.train.beta2 >= 0 && c.train.beta2 < 1))
    throw ConfigError("train.beta1 and train.beta2 must be in [0, 1)");
  if (!(c.data.val_fraction >= 0 && c.data.val_fraction < 1))
    throw ConfigError(fmt::format("data.val_fraction must be in [0, 1), got {}", c.data.val_fraction));
  if (c.data.format != "text" && c.data.format != "documents" && c.data.format != "fashion-mnist" &&
      c.data.format != "image-folder" && c.data.format != "instruct")
    throw ConfigError(fmt::format("data.format '{}' is not known (text, documents, instruct, fashion-mnist or image-folder)", c.data.format));
  if (c.data.train_on != "assistant" && c.data.train_on != "all")
    throw ConfigError(fmt::format("data.train_on '{}' is not known (assistant or all)", c.data.train_on));
  if (c.data.too_long != "error" && c.data.too_long != "truncate" && c.data.too_long != "drop")
    throw ConfigError(fmt::format("data.too_long '{}' is not known (error, truncate or drop)", c.data.too_long));
  if (c.data.packing && c.data.format != "documents" && c.data.format != "instruct")
    throw ConfigError(fmt::format("data.packing applies to data.format documents or instruct, not {}", c.data.format));
  if (c.data.format != "instruct") {  // set for other data, they would be ignored
    if (!c.data.chat_template.empty())
      throw ConfigError(fmt::format("data.chat_template applies to data.format instruct, not {}", c.data.format));
    if (c.data.train_on != "assistant")
      throw ConfigError(fmt::format("data.train_on applies to data.format instruct, not {}", c.data.format));
    if (c.data.too_long != "error")
      throw ConfigError(fmt::format("data.too_long applies to data.format instruct, not {}", c.data.format));
  }
  non_negative(c.sample.temperature, "sample.temperature");
  non_negative(c.sample.top_k, "sample.top_k");
  if (!(c.model.layer_norm_epsilon > 0))
    throw ConfigError(fmt::format("model.layer_norm_epsilon must be positive, got {}", c.model.layer_norm_epsilon));
  if (!(c.llama.rms_norm_eps > 0))
    throw ConfigError(fmt::format("model.rms_norm_eps must be positive, got {}", c.llama.rms_norm_eps));
  if (!(c.llama.rope_theta > 0))
    throw ConfigError(fmt::format("model.rope_theta must be positive, got {}", c.llama.rope_theta));
  if (!(c.lora.alpha > 0)) throw ConfigError(fmt::format("lora.alpha must be positive, got {}", c.lora.alpha));
  non_negative(c.train.momentum, "train.momentum");
  non_negative(c.train.min_lr_ratio, "train.min_lr_ratio");
  non_negative(c.vision.epochs, "train.epochs");
  if (!(c.vision.width > 0)) throw ConfigError(fmt::format("model.width must be positive, got {}", c.vision.width));
  if (c.out_dir.empty()) throw ConfigError("out_dir is empty");
}

void resolve_length(RunConfig& cfg, const std::vector<std::string>& overrides) {
  bool steps = false, epochs = false;
  for (const std::string& o : overrides) {
    const std::string key = o.substr(0, o.find('='));
    steps = steps || key == "train.steps";
    epochs = epochs || key == "train.epochs";
  }
  if (steps && epochs && cfg.vision.epochs > 0)
    throw ConfigError("train.steps and train.epochs are both given on the command line; give one of them");
  if (steps && !epochs) cfg.vision.epochs = 0;  // the command line's train.steps decides
}

std::string to_yaml(const RunConfig& cfg) {
  RunConfig c = cfg;
  YAML::Emitter out;
  out << YAML::BeginMap;
  std::string section;
  for (Field& f : fields(c)) {
    auto dot = f.key.name.find('.');
    std::string sec = dot == std::string::npos ? "" : f.key.name.substr(0, dot);
    std::string leaf = dot == std::string::npos ? f.key.name : f.key.name.substr(dot + 1);
    if (sec != section) {
      if (!section.empty()) out << YAML::EndMap;
      if (!sec.empty()) out << YAML::Key << sec << YAML::Value << YAML::BeginMap;
      section = sec;
    }
    out << YAML::Key << leaf << YAML::Value;
    std::visit([&](auto* p) { out << *p; }, f.slot);
  }
  if (!section.empty()) out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::vector<std::pair<std::string, std::string>> config_values(const RunConfig& cfg) {
  RunConfig c = cfg;
  std::vector<std::pair<std::string, std::string>> out;
  for (Field& f : fields(c))
    out.emplace_back(f.key.name, std::visit(
                                     [](auto* p) -> std::string {
                                       using T = std::remove_pointer_t<decltype(p)>;
                                       if constexpr (std::is_same_v<T, std::string>) return *p;
                                       else if constexpr (std::is_same_v<T, bool>) return *p ? "true" : "false";
                                       else return fmt::format("{}", *p);
                                     },
                                     f.slot));
  return out;
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  RunConfig cfg;
  if (path.empty()) apply_yaml(cfg, kDefaultConfigYaml, "the default job");
  else apply_yaml(cfg, read_text_file(path), path);
  for (const std::string& o : overrides) apply_override(cfg, o);
  resolve_length(cfg, overrides);
  validate(cfg);
  return cfg;
}

}  // namespace bb
