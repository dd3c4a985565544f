// JSON field reads and named weight loading for the Hugging Face formats.
#include "io/hf_weights.h"

#include <fmt/format.h>

#include <map>

#include "backend/backend.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "nn/layers.h"

namespace bb {

using nlohmann::json;

json read_json_file(const std::string& path) {
  try {
    return json::parse(read_text_file(path));
  } catch (const json::exception& e) {
    throw FormatError(fmt::format("{} is not valid JSON ({})", path, e.what()));
  }
}

int64_t JsonFields::integer(const char* key) const {
  if (!j.contains(key)) throw FormatError(fmt::format("{} has no field '{}'", path, key));
  return integer(key, 0);
}

int64_t JsonFields::integer(const char* key, int64_t fallback) const {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number_integer())
    throw FormatError(fmt::format("{}: field '{}' must be an integer, got {}", path, key, j[key].dump()));
  return j[key].get<int64_t>();
}

double JsonFields::number(const char* key, double fallback) const {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number())
    throw FormatError(fmt::format("{}: field '{}' must be a number, got {}", path, key, j[key].dump()));
  return j[key].get<double>();
}

bool JsonFields::boolean(const char* key, bool fallback) const {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean())
    throw FormatError(fmt::format("{}: field '{}' must be true or false, got {}", path, key, j[key].dump()));
  return j[key].get<bool>();
}

std::string JsonFields::string(const char* key) const {
  if (!j.contains(key)) throw FormatError(fmt::format("{} has no field '{}'", path, key));
  if (!j[key].is_string())
    throw FormatError(fmt::format("{}: field '{}' must be a string, got {}", path, key, j[key].dump()));
  return j[key].get<std::string>();
}

std::set<std::string> lowerable_linear_weights(const Module& model) {
  std::set<std::string> names;
  for (auto& [path, m] : model.named_modules())
    if (std::dynamic_pointer_cast<Linear>(m) && path != "lm_head") names.insert(path + ".weight");
  return names;
}

void load_named_weights(Module& model, const NamedTensors& weights, const std::string& source,
                        const std::function<std::string(const std::string&)>& rename, DType linear_dtype) {
  std::map<std::string, Tensor> by_name;
  for (const auto& [name, t] : weights) by_name[rename(name)] = t;
  const std::set<std::string> lowered =
      linear_dtype == DType::F32 ? std::set<std::string>{} : lowerable_linear_weights(model);
  for (const auto& [name, param] : model.named_parameters()) {
    auto it = by_name.find(name);
    if (it == by_name.end()) throw FormatError(fmt::format("{}: tensor '{}' is missing", source, name));
    if (it->second.shape() != param.shape())
      throw FormatError(fmt::format("{}: tensor '{}' is {} but the config makes it {}", source, name,
                                    it->second.shape().str(), param.shape().str()));
    Tensor value = it->second;
    const DType want = lowered.count(name) ? linear_dtype : DType::F32;
    if (value.dtype() != want) {
      Tensor converted = Tensor::empty(value.shape(), want, Device::CPU, Category::Parameters);
      backend_for(Device::CPU).cast(value, converted);
      value = converted;
    }
    model.set_parameter(name, value);
  }
}

}  // namespace bb
