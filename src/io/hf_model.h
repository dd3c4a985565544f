// Any supported language model in the Hugging Face layout: reads config.json's model_type
// and hands over to that model's loader and saver.
#pragma once
#include <memory>
#include <string>

#include "models/causal_lm.h"

namespace bb {

// The model_type field of dir/config.json; FormatError naming the file when absent.
std::string read_model_type(const std::string& dir);
// The model of a folder. The model is built on Meta (uncounted) and then points at the
// folder's tensors, so no randomly initialised copy ever exists (an f32 file is used
// straight from its mapping). On Device::Meta only config.json and the safetensors headers
// are read: the planner's shapes, counted as the CPU load would count them (mapped tensors at
// their exact size, conversions as the buffers they allocate).
// `linear_dtype` as in load_named_weights (bf16 for a frozen LoRA base).
std::unique_ptr<CausalLM> load_causal_lm(const std::string& dir, Device device = Device::CPU,
                                         DType linear_dtype = DType::F32);
void save_causal_lm(const std::string& dir, const CausalLM& model);

}  // namespace bb
