// GPT-2 config.json and weights in the Hugging Face layout.
#include "io/hf_gpt2.h"

#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/storage.h"
#include "io/atomic_file.h"
#include "io/hf_weights.h"
#include "io/safetensors.h"

namespace bb {

using nlohmann::json;

GPT2Config read_gpt2_config(const std::string& dir) {
  const std::string path = dir + "/config.json";
  return parse_gpt2_config(read_text_file(path), path);
}

GPT2Config parse_gpt2_config(const std::string& text, const std::string& path) {
  const json j = parse_json_text(text, path);
  if (!j.is_object()) throw FormatError(fmt::format("{} does not hold a JSON object", path));
  JsonFields f{j, path};
  const std::string type = f.string("model_type", "");
  if (type != "gpt2")
    throw FormatError(fmt::format("{}: model_type '{}' is not gpt2", path, type));
  GPT2Config c;
  c.n_layer = f.size("n_layer", kMaxLayers);
  c.n_head = f.size("n_head", kMaxWidth);
  c.n_embd = f.size("n_embd", kMaxWidth);
  c.block_size = f.size("n_positions", 1024, kMaxPositions);
  c.vocab_size = f.size("vocab_size", kMaxVocab);
  c.layer_norm_epsilon = f.real("layer_norm_epsilon", 1e-5f);
  if (!(c.layer_norm_epsilon > 0))
    throw FormatError(fmt::format("{}: field 'layer_norm_epsilon' must be positive, got {}", path,
                                  c.layer_norm_epsilon));
  c.dropout = f.real("resid_pdrop", 0.0f);
  // Settings of transformers' GPT2Model that would change what the model computes: the
  // values GPT-2 itself uses are the only ones implemented. The MLP's GELU is the tanh form
  // (gelu_new, gelu_pytorch_tanh and gelu_fast are that same function).
  const std::string act = f.string("activation_function", "gelu_new");
  if (act != "gelu_new" && act != "gelu_pytorch_tanh" && act != "gelu_fast")
    throw FormatError(fmt::format("{}: field 'activation_function' is '{}', which is not supported "
                                  "(the tanh GELU: gelu_new, gelu_pytorch_tanh, gelu_fast)", path, act));
  if (j.contains("n_inner") && !j["n_inner"].is_null() && f.integer("n_inner", 0) != 4 * c.n_embd)
    throw FormatError(fmt::format("{}: field 'n_inner' is {}, but only 4 * n_embd ({}) is supported", path,
                                  j["n_inner"].dump(), 4 * c.n_embd));
  f.require_value("scale_attn_weights", true, "attention scores are always scaled by 1/sqrt(head size)");
  f.require_value("scale_attn_by_inverse_layer_idx", false, "no per-layer attention scaling");
  f.require_value("reorder_and_upcast_attn", false, "no upcast attention");
  f.require_value("tie_word_embeddings", true, "the LM head is always tied to wte");
  f.require_value("add_cross_attention", false, "decoder-only");
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

void load_gpt2_weights(GPT2& model, LazyTensors weights, const std::string& source, DType linear_dtype) {
  // The Hub's GPT2LMHeadModel files prefix the body with "transformer."; GPT2Model's do not.
  load_named_weights(model, std::move(weights), source, [](const std::string& name) {
    return name.rfind("transformer.", 0) == 0 ? name.substr(12) : name;
  }, linear_dtype);
}

std::unique_ptr<GPT2> load_gpt2(const std::string& dir, Device device, DType linear_dtype) {
  std::unique_ptr<GPT2> model;
  {
    UncountedMeta scaffold;
    model = std::make_unique<GPT2>(read_gpt2_config(dir), 0, Device::Meta);
  }
  load_gpt2_weights(*model, map_safetensors_dir(dir, Category::Parameters, device), dir, linear_dtype);
  return model;
}

void save_gpt2(const std::string& dir, const GPT2& model) {
  std::filesystem::create_directories(dir);
  write_gpt2_config(dir, model.config());
  save_safetensors_dir(dir, model.named_parameters(), 0, {{"format", "pt"}});
}

}  // namespace bb
