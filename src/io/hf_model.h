// Any supported language model in the Hugging Face layout: reads config.json's model_type
// and hands over to that model's loader and saver.
#pragma once
#include <memory>
#include <string>

#include "models/causal_lm.h"

namespace bb {

// The model_type field of dir/config.json; FormatError naming the file when absent.
std::string read_model_type(const std::string& dir);
std::unique_ptr<CausalLM> load_causal_lm(const std::string& dir, Device device = Device::CPU);
void save_causal_lm(const std::string& dir, const CausalLM& model);

}  // namespace bb
