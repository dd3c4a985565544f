// LoRA adapters in PEFT's layout: adapter_config.json (peft_type LORA, r, lora_alpha,
// lora_dropout, target_modules, ...) and adapter_model.safetensors with tensors named
// base_model.model.<Hugging Face module path>.lora_A.weight (r, in) and .lora_B.weight
// (out, r), so an adapter trained here loads with peft.PeftModel.from_pretrained and back.
#pragma once
#include <string>

#include "models/causal_lm.h"
#include "nn/lora.h"

namespace bb {

// The module path Hugging Face uses for one of our module paths ("h.0.attn.c_attn" of GPT-2
// is "transformer.h.0.attn.c_attn"; Llama's are the same).
std::string hf_module_path(const CausalLM& model, const std::string& path);

// Reads dir/adapter_config.json; FormatError naming the file and field.
LoraOptions read_peft_config(const std::string& dir);
// The same from the file's text; `path` names it in errors. target_modules is kept as PEFT
// means it, over the Hub's module names (peft_targets_module).
LoraOptions parse_peft_config(const std::string& text, const std::string& path);
// PEFT's rule: a string target_modules is a regular expression the full module name
// ("transformer.h.0.attn.c_attn") must match whole; a list matches a name equal to an entry
// or ending with "." + the entry.
bool peft_targets_module(const LoraOptions& o, const std::string& hf_name);

// Writes both files of the model's adapters (atomically).
void save_peft_adapter(const std::string& dir, const CausalLM& model, const LoraOptions& o,
                       const std::string& base_model_name_or_path);

// Attaches the adapter in `dir` to `model` (apply_lora with its config) and loads its weights;
// every adapter tensor the config implies must be present with the right shape.
LoraOptions load_peft_adapter(const std::string& dir, CausalLM& model, DType base_dtype = DType::F32);

}  // namespace bb
