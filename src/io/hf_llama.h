// Llama in the Hugging Face layout: config.json with LlamaConfig's keys and safetensors
// weights (single or sharded) with LlamaForCausalLM's tensor names.
#pragma once
#include <memory>
#include <string>

#include "models/llama.h"

namespace bb {

// Reads dir/config.json; throws FormatError naming the file and field.
LlamaConfig read_llama_config(const std::string& dir);
// The same from config.json's text; `path` names the file in errors.
LlamaConfig parse_llama_config(const std::string& text, const std::string& path);
void write_llama_config(const std::string& dir, const LlamaConfig& c);

// Builds the model from dir/config.json and loads its weights.
// As load_causal_lm (io/hf_model.h).
std::unique_ptr<Llama> load_llama(const std::string& dir, Device device = Device::CPU,
                                  DType linear_dtype = DType::F32);
// Saves config.json and the weights, sharded above max_shard_bytes (0: one file).
void save_llama(const std::string& dir, const Llama& model, int64_t max_shard_bytes = 0);

}  // namespace bb
