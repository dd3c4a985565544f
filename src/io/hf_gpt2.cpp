// GPT-2 config.json and weights in the Hugging Face layout.
#include "io/hf_gpt2.h"

#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/hf_weights.h"
#include "io/safetensors.h"

namespace bb {

using nlohmann::json;

namespace {

json parse_json_file(const std::string& path) {
  try {
    return json::parse(read_text_file(path));
  } catch (const json::exception& e) {
    throw FormatError(fmt::format("{} is not valid JSON ({})", path, e.what()));
  }
}

int64_t int_field(const json& j, const std::string& path, const char* key, int64_t fallback, bool required) {
  if (!j.contains(key)) {
    if (required) throw FormatError(fmt::format("{} has no field '{}'", path, key));
    return fallback;
  }
  if (!j[key].is_number_integer())
    throw FormatError(fmt::format("{}: field '{}' must be an integer, got {}", path, key, j[key].dump()));
  return j[key].get<int64_t>();
}

float float_field(const json& j, const std::string& path, const char* key, float fallback) {
  if (!j.contains(key)) return fallback;
  if (!j[key].is_number())
    throw FormatError(fmt::format("{}: field '{}' must be a number, got {}", path, key, j[key].dump()));
  return j[key].get<float>();
}

}  // namespace

GPT2Config read_gpt2_config(const std::string& dir) {
  const std::string path = dir + "/config.json";
  json j = parse_json_file(path);
  std::string type = j.value("model_type", "");
  if (type != "gpt2")
    throw FormatError(fmt::format("{}: model_type '{}' is not gpt2", path, type));
  GPT2Config c;
  c.n_layer = int_field(j, path, "n_layer", 0, true);
  c.n_head = int_field(j, path, "n_head", 0, true);
  c.n_embd = int_field(j, path, "n_embd", 0, true);
  c.block_size = int_field(j, path, "n_positions", 1024, false);
  c.vocab_size = int_field(j, path, "vocab_size", 0, true);
  c.layer_norm_epsilon = float_field(j, path, "layer_norm_epsilon", 1e-5f);
  c.dropout = float_field(j, path, "resid_pdrop", 0.0f);
  try {
    c.validate();
  } catch (const ConfigError& e) {
    throw FormatError(fmt::format("{}: {}", path, e.what()));
  }
  return c;
}

void write_gpt2_config(const std::string& dir, const GPT2Config& c) {
  json j = {{"model_type", "gpt2"},
            {"architectures", {"GPT2LMHeadModel"}},
            {"n_layer", c.n_layer},
            {"n_head", c.n_head},
            {"n_embd", c.n_embd},
            {"n_positions", c.block_size},
            {"n_ctx", c.block_size},
            {"vocab_size", c.vocab_size},
            {"layer_norm_epsilon", c.layer_norm_epsilon},
            {"activation_function", "gelu_new"},
            {"resid_pdrop", c.dropout},
            {"embd_pdrop", c.dropout},
            {"attn_pdrop", 0.0},
            {"initializer_range", 0.02},
            {"tie_word_embeddings", true},
            {"bos_token_id", c.vocab_size - 1},
            {"eos_token_id", c.vocab_size - 1},
            {"torch_dtype", "float32"}};
  write_text_atomic(dir + "/config.json", j.dump(2) + "\n");
}

void load_gpt2_weights(GPT2& model, const NamedTensors& weights, const std::string& source, DType linear_dtype) {
  // The Hub's GPT2LMHeadModel files prefix the body with "transformer."; GPT2Model's do not.
  load_named_weights(model, weights, source, [](const std::string& name) {
    return name.rfind("transformer.", 0) == 0 ? name.substr(12) : name;
  }, linear_dtype);
}

std::unique_ptr<GPT2> load_gpt2(const std::string& dir, Device device, DType linear_dtype) {
  auto model = std::make_unique<GPT2>(read_gpt2_config(dir), 0, Device::Meta);
  if (device == Device::Meta) return model;
  load_gpt2_weights(*model, load_safetensors_dir(dir), dir, linear_dtype);
  return model;
}

void save_gpt2(const std::string& dir, const GPT2& model) {
  std::filesystem::create_directories(dir);
  write_gpt2_config(dir, model.config());
  save_safetensors_dir(dir, model.named_parameters(), 0, {{"format", "pt"}});
}

}  // namespace bb
