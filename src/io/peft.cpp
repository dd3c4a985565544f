// PEFT adapter_config.json and adapter_model.safetensors.
#include "io/peft.h"

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
constexpr const char* kPrefix = "base_model.model.";
}

std::string hf_module_path(const CausalLM& model, const std::string& path) {
  return model.model_type() == "gpt2" ? "transformer." + path : path;
}

LoraOptions read_peft_config(const std::string& dir) {
  const std::string path = dir + "/adapter_config.json";
  json j = read_json_file(path);
  JsonFields f{j, path};
  if (f.string("peft_type") != "LORA")
    throw FormatError(fmt::format("{}: field 'peft_type' is '{}', only LORA is supported", path, j["peft_type"].get<std::string>()));
  LoraOptions o;
  o.r = f.integer("r");
  o.alpha = static_cast<float>(f.number("lora_alpha", 8.0));
  o.dropout = static_cast<float>(f.number("lora_dropout", 0.0));
  if (o.r <= 0) throw FormatError(fmt::format("{}: field 'r' must be positive, got {}", path, o.r));
  if (!j.contains("target_modules")) throw FormatError(fmt::format("{} has no field 'target_modules'", path));
  const json& t = j["target_modules"];
  if (t.is_string()) {
    o.target_regex = t.get<std::string>();
  } else if (t.is_array()) {
    for (const json& e : t) {
      if (!e.is_string())
        throw FormatError(fmt::format("{}: field 'target_modules' must hold strings, got {}", path, e.dump()));
      o.targets.push_back(e.get<std::string>());
    }
  } else {
    throw FormatError(fmt::format("{}: field 'target_modules' must be a list or a string, got {}", path, t.dump()));
  }
  if (j.contains("use_dora") && j["use_dora"].is_boolean() && j["use_dora"].get<bool>())
    throw FormatError(fmt::format("{}: field 'use_dora' true is not supported", path));
  if (j.contains("use_rslora") && j["use_rslora"].is_boolean() && j["use_rslora"].get<bool>())
    throw FormatError(fmt::format("{}: field 'use_rslora' true is not supported", path));
  if (j.contains("bias") && j["bias"].is_string() && j["bias"].get<std::string>() != "none")
    throw FormatError(fmt::format("{}: field 'bias' must be \"none\"", path));
  return o;
}

void save_peft_adapter(const std::string& dir, const CausalLM& model, const LoraOptions& o,
                       const std::string& base_model_name_or_path) {
  std::filesystem::create_directories(dir);
  NamedTensors tensors;
  for (auto& [path, lin] : lora_layers(model)) {
    const std::string base = kPrefix + hf_module_path(model, path);
    tensors.emplace_back(base + ".lora_A.weight", model.parameter(path + ".lora_A.weight"));
    tensors.emplace_back(base + ".lora_B.weight", model.parameter(path + ".lora_B.weight"));
  }
  json targets = json::array();
  for (const auto& t : o.targets) targets.push_back(t);
  json j = {{"peft_type", "LORA"},
            {"task_type", "CAUSAL_LM"},
            {"base_model_name_or_path", base_model_name_or_path},
            {"r", o.r},
            {"lora_alpha", o.alpha},
            {"lora_dropout", o.dropout},
            {"target_modules", o.target_regex.empty() ? targets : json(o.target_regex)},
            {"bias", "none"},
            {"fan_in_fan_out", model.model_type() == "gpt2"},  // GPT-2's Conv1D stores (in, out)
            {"inference_mode", true},
            {"init_lora_weights", true},
            {"modules_to_save", nullptr},
            {"use_rslora", false},
            {"use_dora", false},
            {"rank_pattern", json::object()},
            {"alpha_pattern", json::object()}};
  save_safetensors(dir + "/adapter_model.safetensors", tensors, {{"format", "pt"}});
  write_text_atomic(dir + "/adapter_config.json", j.dump(2) + "\n");
}

LoraOptions load_peft_adapter(const std::string& dir, CausalLM& model, DType base_dtype) {
  LoraOptions o = read_peft_config(dir);
  o.base_dtype = base_dtype;
  apply_lora(model, o);
  const std::string file = dir + "/adapter_model.safetensors";
  SafetensorsFile st(file);
  for (auto& [path, lin] : lora_layers(model)) {
    for (const char* part : {".lora_A.weight", ".lora_B.weight"}) {
      const std::string name = kPrefix + hf_module_path(model, path) + part;
      // PEFT versions before 0.7 kept the adapter name in saved keys.
      std::string alt = name;
      alt.insert(alt.size() - 7, ".default");
      const std::string& found = st.contains(name) ? name : alt;
      if (!st.contains(found)) throw FormatError(fmt::format("{}: tensor '{}' is missing", file, name));
      Tensor value = st.get(found, DType::F32, Category::Parameters);
      Tensor param = model.parameter(path + part);
      if (value.shape() != param.shape())
        throw FormatError(fmt::format("{}: tensor '{}' is {} but the base model and r make it {}", file, name,
                                      value.shape().str(), param.shape().str()));
      model.set_parameter(path + part, value);
    }
  }
  return o;
}

}  // namespace bb
