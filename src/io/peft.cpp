// PEFT adapter_config.json and adapter_model.safetensors.
#include "io/peft.h"

#include <fmt/format.h>

#include <filesystem>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/hf_weights.h"
#include "io/safetensors.h"
#include "nn/layers.h"

namespace bb {

using nlohmann::json;

namespace {
constexpr const char* kPrefix = "base_model.model.";
constexpr int64_t kMaxRank = 1 << 16;
constexpr size_t kMaxRegexDigits = 6;
}

std::string hf_module_path(const CausalLM& model, const std::string& path) {
  return model.model_type() == "gpt2" ? "transformer." + path : path;
}

LoraOptions read_peft_config(const std::string& dir) {
  const std::string path = dir + "/adapter_config.json";
  return parse_peft_config(read_text_file(path), path);
}

LoraOptions parse_peft_config(const std::string& text, const std::string& path) {
  const json j = parse_json_text(text, path);
  if (!j.is_object()) throw FormatError(fmt::format("{} does not hold a JSON object", path));
  JsonFields f{j, path};
  const std::string type = f.string("peft_type");
  if (type != "LORA")
    throw FormatError(fmt::format("{}: field 'peft_type' is '{}', only LORA is supported", path, type));
  LoraOptions o;
  o.r = f.size("r", kMaxRank);
  o.alpha = f.real("lora_alpha", 8.0f);
  o.dropout = f.real("lora_dropout", 0.0f);
  if (!(o.dropout >= 0.0f && o.dropout < 1.0f))
    throw FormatError(fmt::format("{}: field 'lora_dropout' must be in [0, 1), got {}", path, o.dropout));
  if (!j.contains("target_modules")) throw FormatError(fmt::format("{} has no field 'target_modules'", path));
  const json& t = j["target_modules"];
  if (t.is_string()) {
    o.target_regex = t.get<std::string>();
    if (o.target_regex.empty()) throw FormatError(fmt::format("{}: field 'target_modules' is empty", path));
    // std::regex reads a repeat count or back-reference number into an int that overflows
    // for long digit runs; no module name needs one that large.
    size_t digits = 0;
    for (char ch : o.target_regex)
      if ((digits = (ch >= '0' && ch <= '9') ? digits + 1 : 0) > kMaxRegexDigits)
        throw FormatError(fmt::format("{}: field 'target_modules' holds a number of more than {} digits", path,
                                      kMaxRegexDigits));
    try {
      std::regex check(o.target_regex);
    } catch (const std::regex_error& e) {
      throw FormatError(fmt::format("{}: field 'target_modules' is not a regular expression ({})", path, e.what()));
    }
  } else if (t.is_array()) {
    for (const json& e : t) {
      if (!e.is_string() || e.get_ref<const std::string&>().empty())
        throw FormatError(fmt::format("{}: field 'target_modules' must hold names, got {}", path, e.dump()));
      o.targets.push_back(e.get<std::string>());
    }
    if (o.targets.empty()) throw FormatError(fmt::format("{}: field 'target_modules' is an empty list", path));
  } else {
    throw FormatError(fmt::format("{}: field 'target_modules' must be a list or a string, got {}", path, t.dump()));
  }
  if (f.boolean("use_dora", false))
    throw FormatError(fmt::format("{}: field 'use_dora' true is not supported (DoRA's magnitude vector)", path));
  // rsLoRA scales by alpha / sqrt(r) rather than alpha / r: the same update as plain LoRA
  // with alpha * sqrt(r), which is what the adapter is given.
  if (f.boolean("use_rslora", false)) o.alpha *= std::sqrt(static_cast<float>(o.r));
  if (f.string("bias", "none") != "none")
    throw FormatError(fmt::format("{}: field 'bias' must be \"none\", got {}", path, j["bias"].dump()));
  // PEFT stores lora_A as (r, in) and lora_B as (out, r) for GPT-2's Conv1D too, and
  // itself sets fan_in_fan_out to what the layer needs: the flag changes nothing here.
  f.boolean("fan_in_fan_out", false);
  // Per-module ranks and scales, extra trained modules and layer subsets: not implemented,
  // so refused rather than silently dropped.
  for (const char* key : {"rank_pattern", "alpha_pattern"})
    if (j.contains(key) && !j[key].is_null() && !(j[key].is_object() && j[key].empty()))
      throw FormatError(fmt::format("{}: field '{}' is {}; per-module ranks and alphas are not supported", path,
                                    key, j[key].dump()));
  for (const char* key : {"modules_to_save", "layers_to_transform"})
    if (j.contains(key) && !j[key].is_null() && !(j[key].is_array() && j[key].empty()))
      throw FormatError(fmt::format("{}: field '{}' is {}, which is not supported", path, key, j[key].dump()));
  return o;
}

// PEFT's rule is the one apply_lora follows, applied here to the Hub's module name.
bool peft_targets_module(const LoraOptions& o, const std::string& hf_name) { return lora_matches(o, hf_name); }

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
  // target_modules speaks of the Hub's module names: resolved here against them into the
  // exact list of our module paths it selects.
  LoraOptions resolved = o;
  resolved.target_regex.clear();
  resolved.targets.clear();
  for (auto& [path, m] : model.named_modules())
    if (std::dynamic_pointer_cast<Linear>(m) && peft_targets_module(o, hf_module_path(model, path)))
      resolved.targets.push_back(path);
  if (resolved.targets.empty())
    throw FormatError(fmt::format("{}/adapter_config.json: field 'target_modules' matches no Linear layer of the {} model",
                                  dir, model.model_type()));
  apply_lora(model, resolved);
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
      require_finite(value, found, file);
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
