// Any supported language model in the Hugging Face layout: reads config.json's model_type
// and hands over to that model's loader and saver.
#pragma once
#include <memory>
#include <string>

#include "data/tokenizer.h"
#include "models/causal_lm.h"

namespace bb {

// The model_type field of dir/config.json; FormatError naming the file when absent.
std::string read_model_type(const std::string& dir);
// The model of a folder. The model is built on Meta (uncounted) and then points at the
// folder's tensors, so no randomly initialised copy ever exists (an f32 file is used
// straight from its mapping). On Device::Meta only config.json and the safetensors headers
// are read: the planner's shapes, counted as the CPU load would count them (mapped tensors at
// their exact size, conversions as the buffers they allocate).
// `linear_dtype` as in load_named_weights (bf16 for a frozen LoRA base). A path ending in
// .gguf is read as a GGUF file (io/gguf_import.h).
std::unique_ptr<CausalLM> load_causal_lm(const std::string& dir, Device device = Device::CPU,
                                         DType linear_dtype = DType::F32);
// Writes config.json and the weights, and generation_config.json. The special token ids come
// from the tokenizer the model trained with: bos_token_id, eos_token_id (a list when several
// ids end a generation) and pad_token_id where set, in both files; a model without a BOS
// uses its EOS (as GPT-2 does). Without a tokenizer (all ids -1) the model's config decides.
void save_causal_lm(const std::string& dir, const CausalLM& model, const SpecialIds& special = {});

}  // namespace bb
