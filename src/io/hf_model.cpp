// model_type dispatch for Hugging Face model folders.
#include "io/hf_model.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/hf_gpt2.h"
#include "io/hf_llama.h"

namespace bb {

std::string read_model_type(const std::string& dir) {
  const std::string path = dir + "/config.json";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(fmt::format("{} is not valid JSON ({})", path, e.what()));
  }
  if (!j.contains("model_type") || !j["model_type"].is_string())
    throw FormatError(fmt::format("{} has no model_type field", path));
  return j["model_type"].get<std::string>();
}

std::unique_ptr<CausalLM> load_causal_lm(const std::string& dir, Device device, DType linear_dtype) {
  const std::string type = read_model_type(dir);
  if (type == "gpt2") return load_gpt2(dir, device, linear_dtype);
  if (type == "llama") return load_llama(dir, device, linear_dtype);
  throw FormatError(fmt::format("{}/config.json: field 'model_type' is '{}', which is not supported (gpt2, llama)",
                                dir, type));
}

void save_causal_lm(const std::string& dir, const CausalLM& model) {
  if (auto* g = dynamic_cast<const GPT2*>(&model)) return save_gpt2(dir, *g);
  if (auto* l = dynamic_cast<const Llama*>(&model)) return save_llama(dir, *l);
  throw FormatError(fmt::format("saving a {} model is not supported", model.model_type()));
}

}  // namespace bb
