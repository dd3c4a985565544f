// model_type dispatch for Hugging Face model folders.
#include "io/hf_model.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/hf_gpt2.h"
#include "io/gguf_import.h"
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
  if (is_gguf_path(dir)) return load_gguf_causal_lm(dir, device, linear_dtype);  // a llama.cpp file
  const std::string type = read_model_type(dir);
  if (type == "gpt2") return load_gpt2(dir, device, linear_dtype);
  if (type == "llama") return load_llama(dir, device, linear_dtype);
  throw FormatError(fmt::format("{}/config.json: field 'model_type' is '{}', which is not supported (gpt2, llama)",
                                dir, type));
}

namespace {

nlohmann::json id_or_list(const std::vector<int64_t>& ids) {
  return ids.size() == 1 ? nlohmann::json(ids[0]) : nlohmann::json(ids);
}

// config.json gets the tokenizer's ids; generation_config.json repeats them, as Transformers
// and llama.cpp read the stop ids from there.
void write_special_ids(const std::string& dir, const SpecialIds& special) {
  const std::string path = dir + "/config.json";
  nlohmann::json config = nlohmann::json::parse(read_text_file(path));
  std::vector<int64_t> stop = special.stop;
  if (stop.empty() && special.eos >= 0) stop = {special.eos};
  if (!stop.empty()) {
    config["eos_token_id"] = id_or_list(stop);
    config["bos_token_id"] = special.bos >= 0 ? special.bos : stop[0];
  }
  if (special.pad >= 0) config["pad_token_id"] = special.pad;
  write_text_atomic(path, config.dump(2) + "\n");
  nlohmann::json generation = nlohmann::json::object();
  for (const char* key : {"bos_token_id", "eos_token_id", "pad_token_id"})
    if (config.contains(key) && !config[key].is_null()) generation[key] = config[key];
  write_text_atomic(dir + "/generation_config.json", generation.dump(2) + "\n");
}

}  // namespace

void save_causal_lm(const std::string& dir, const CausalLM& model, const SpecialIds& special) {
  if (auto* g = dynamic_cast<const GPT2*>(&model)) save_gpt2(dir, *g);
  else if (auto* l = dynamic_cast<const Llama*>(&model)) save_llama(dir, *l);
  else throw FormatError(fmt::format("saving a {} model is not supported", model.model_type()));
  write_special_ids(dir, special);
}

}  // namespace bb
