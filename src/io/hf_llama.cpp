// Llama config.json and weights in the Hugging Face layout.
#include "io/hf_llama.h"

#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/storage.h"
#include "io/atomic_file.h"
#include "io/hf_weights.h"
#include "io/safetensors.h"

namespace bb {

using nlohmann::json;

LlamaConfig read_llama_config(const std::string& dir) {
  const std::string path = dir + "/config.json";
  return parse_llama_config(read_text_file(path), path);
}

LlamaConfig parse_llama_config(const std::string& text, const std::string& path) {
  const json j = parse_json_text(text, path);
  if (!j.is_object()) throw FormatError(fmt::format("{} does not hold a JSON object", path));
  JsonFields f{j, path};
  const std::string type = f.string("model_type", "");
  if (type != "llama")
    throw FormatError(fmt::format("{}: field 'model_type' is '{}', not llama", path, type));
  LlamaConfig c;
  c.hidden_size = f.size("hidden_size", kMaxWidth);
  c.intermediate_size = f.size("intermediate_size", 4 * kMaxWidth);
  c.num_hidden_layers = f.size("num_hidden_layers", kMaxLayers);
  c.num_attention_heads = f.size("num_attention_heads", kMaxWidth);
  c.num_key_value_heads = f.size("num_key_value_heads", c.num_attention_heads, kMaxWidth);
  c.vocab_size = f.size("vocab_size", kMaxVocab);
  c.max_position_embeddings = f.size("max_position_embeddings", 2048, kMaxPositions);
  c.rms_norm_eps = f.real("rms_norm_eps", 1e-6f);
  if (!(c.rms_norm_eps > 0))
    throw FormatError(fmt::format("{}: field 'rms_norm_eps' must be positive, got {}", path, c.rms_norm_eps));
  c.rope_theta = f.real("rope_theta", 10000.0f);
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);
  c.bos_token_id = f.integer("bos_token_id", -1);
  c.eos_token_id = f.first_integer("eos_token_id", -1);
  if (j.contains("head_dim") && !j["head_dim"].is_null() &&
      (f.integer("head_dim", 0) != c.hidden_size / c.num_attention_heads ||
       c.hidden_size % c.num_attention_heads != 0))
    throw FormatError(fmt::format("{}: field 'head_dim' other than hidden_size / num_attention_heads is not supported", path));
  // Settings of transformers' LlamaModel that would change what the model computes: only
  // the values of the plain architecture are implemented.
  f.require_value("hidden_act", "silu", "the MLP is SwiGLU with SiLU");
  f.require_value("rope_scaling", json(), "plain rotary embedding only");
  f.require_value("attention_bias", false, "the projections have no bias");
  f.require_value("mlp_bias", false, "the projections have no bias");
  f.require_value("attention_dropout", 0.0, "attention probabilities are never formed, so not dropped");
  try {
    c.validate();
  } catch (const ConfigError& e) {
    throw FormatError(fmt::format("{}: {}", path, e.what()));
  }
  return c;
}

void write_llama_config(const std::string& dir, const LlamaConfig& c) {
  json j = {{"model_type", "llama"},
            {"architectures", {"LlamaForCausalLM"}},
            {"hidden_size", c.hidden_size},
            {"intermediate_size", c.intermediate_size},
            {"num_hidden_layers", c.num_hidden_layers},
            {"num_attention_heads", c.num_attention_heads},
            {"num_key_value_heads", c.num_key_value_heads},
            {"vocab_size", c.vocab_size},
            {"max_position_embeddings", c.max_position_embeddings},
            {"rms_norm_eps", c.rms_norm_eps},
            {"rope_theta", c.rope_theta},
            {"rope_scaling", nullptr},
            {"hidden_act", "silu"},
            {"attention_bias", false},
            {"mlp_bias", false},
            {"initializer_range", 0.02},
            {"tie_word_embeddings", c.tie_word_embeddings},
            {"torch_dtype", "float32"}};
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_id >= 0) j["eos_token_id"] = c.eos_token_id;
  write_text_atomic(dir + "/config.json", j.dump(2) + "\n");
}

std::unique_ptr<Llama> load_llama(const std::string& dir, Device device, DType linear_dtype) {
  std::unique_ptr<Llama> model;
  {
    UncountedMeta scaffold;
    model = std::make_unique<Llama>(read_llama_config(dir), 0, Device::Meta);
  }
  LazyTensors weights = map_safetensors_dir(dir, Category::Parameters, device);
  // A tied checkpoint may still carry lm_head.weight (a copy of embed_tokens): it is ignored.
  load_named_weights(*model, std::move(weights), dir, [](const std::string& n) { return n; }, linear_dtype);
  return model;
}

void save_llama(const std::string& dir, const Llama& model, int64_t max_shard_bytes) {
  std::filesystem::create_directories(dir);
  write_llama_config(dir, model.config());
  save_safetensors_dir(dir, model.named_parameters(), max_shard_bytes, {{"format", "pt"}});
}

}  // namespace bb
