// GPT-2 in the Hugging Face layout: config.json with the Hub's keys and model.safetensors
// with its tensor names, so a model saved here loads in transformers and one downloaded
// from the Hub loads here.
#pragma once
#include <memory>
#include <string>

#include "io/safetensors.h"
#include "models/gpt2.h"

namespace bb {

// Reads config.json of a model folder; throws FormatError naming the file and field.
GPT2Config read_gpt2_config(const std::string& dir);
// The same from config.json's text; `path` names the file in errors.
GPT2Config parse_gpt2_config(const std::string& text, const std::string& path);
void write_gpt2_config(const std::string& dir, const GPT2Config& c);

// Builds the model from dir/config.json and loads its weights (single or sharded files;
// names with or without the "transformer." prefix).
// As load_causal_lm (io/hf_model.h).
std::unique_ptr<GPT2> load_gpt2(const std::string& dir, Device device = Device::CPU,
                                DType linear_dtype = DType::F32);
void save_gpt2(const std::string& dir, const GPT2& model);

// Copies weights named as the Hub names them into the model; every model tensor must be
// present (the tied lm_head and attention-mask buffers are skipped).
void load_gpt2_weights(GPT2& model, LazyTensors weights, const std::string& source,
                       DType linear_dtype = DType::F32);

}  // namespace bb
