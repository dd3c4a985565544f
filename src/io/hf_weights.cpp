// JSON field reads and named weight loading for the Hugging Face formats.
#include "io/hf_weights.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include "backend/backend.h"
#include "core/block_quant.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "nn/layers.h"

namespace bb {

using nlohmann::json;

json read_json_file(const std::string& path) { return parse_json_text(read_text_file(path), path); }

json parse_json_text(const std::string& text, const std::string& path) {
  try {
    return json::parse(text);
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

int64_t JsonFields::first_integer(const char* key, int64_t fallback) const {
  if (!j.contains(key) || !j[key].is_array()) return integer(key, fallback);
  const nlohmann::json& list = j[key];
  if (list.empty() || !std::all_of(list.begin(), list.end(), [](const nlohmann::json& v) { return v.is_number_integer(); }))
    throw FormatError(fmt::format("{}: field '{}' must be an integer or a list of integers, got {}", path, key, list.dump()));
  return list[0].get<int64_t>();
}

double JsonFields::number(const char* key, double fallback) const {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number())
    throw FormatError(fmt::format("{}: field '{}' must be a number, got {}", path, key, j[key].dump()));
  return j[key].get<double>();
}

float JsonFields::real(const char* key, float fallback) const {
  const double v = number(key, fallback);
  if (!std::isfinite(v) || std::abs(v) > std::numeric_limits<float>::max())
    throw FormatError(fmt::format("{}: field '{}' must be a finite number, got {}", path, key, j[key].dump()));
  return static_cast<float>(v);
}

int64_t JsonFields::size(const char* key, int64_t limit) const {
  if (!j.contains(key)) throw FormatError(fmt::format("{} has no field '{}'", path, key));
  return size(key, 0, limit);
}

int64_t JsonFields::size(const char* key, int64_t fallback, int64_t limit) const {
  const int64_t v = integer(key, fallback);
  if (v < 1 || v > limit)
    throw FormatError(fmt::format("{}: field '{}' is {}, outside 1..{}", path, key, v, limit));
  return v;
}

void JsonFields::require_value(const char* key, const json& expected, const char* why) const {
  if (!j.contains(key) || j[key].is_null() || j[key] == expected) return;
  throw FormatError(fmt::format("{}: field '{}' is {}, which is not supported ({})", path, key, j[key].dump(), why));
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

std::string JsonFields::string(const char* key, const std::string& fallback) const {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  return string(key);
}

void require_finite(const Tensor& t, const std::string& name, const std::string& source) {
  if (t.is_meta()) return;
  // A NaN or infinity has every exponent bit set, in each float format.
  const auto any_bad = [&](auto word, uint64_t exponent) {
    using W = decltype(word);
    const auto* p = static_cast<const unsigned char*>(t.raw());
    for (int64_t i = 0; i < t.numel(); ++i) {
      W w;
      std::memcpy(&w, p + i * sizeof(W), sizeof(W));
      if ((w & exponent) == exponent) return true;
    }
    return false;
  };
  bool bad = false;
  switch (t.dtype()) {
    case DType::F32: bad = any_bad(uint32_t{}, 0x7f800000u); break;
    case DType::BF16: bad = any_bad(uint16_t{}, 0x7f80u); break;
    case DType::F16: bad = any_bad(uint16_t{}, 0x7c00u); break;
    case DType::Q8_0:
    case DType::Q4_0: {  // a block's values are finite when its f16 scale is
      const auto* p = static_cast<const uint8_t*>(t.raw());
      const size_t bytes = block_bytes(t.dtype());
      for (int64_t b = 0; b < t.numel() / kQuantBlock && !bad; ++b)
        bad = (block_scale_bits(p + b * bytes) & 0x7c00u) == 0x7c00u;
      break;
    }
    default: return;
  }
  if (bad) throw FormatError(fmt::format("{}: tensor '{}' holds NaN or infinite values", source, name));
}

std::map<std::string, WeightLayout> lowerable_linear_weights(const Module& model) {
  std::map<std::string, WeightLayout> names;
  for (auto& [path, m] : model.named_modules())
    if (auto lin = std::dynamic_pointer_cast<Linear>(m); lin && path != "lm_head")
      names[path + ".weight"] = lin->options().layout;
  return names;
}

Tensor to_base_dtype(const Tensor& value, DType want, WeightLayout layout, const std::string& source,
                     const std::string& name) {
  if (is_block_quantized(want)) {
    const int64_t inputs = layout == WeightLayout::kOutIn ? value.dim(-1) : value.dim(0);
    if (value.ndim() != 2 || inputs % kQuantBlock != 0)
      throw ConfigError(fmt::format("lora.base_dtype {}: {} tensor '{}' has {} inputs, not a multiple of {}",
                                    dtype_name(want), source, name, inputs, kQuantBlock));
    return quantize(value, want, layout);
  }
  Tensor converted = Tensor::empty(value.shape(), want, value.device(), Category::Parameters);
  backend_for(value.device()).cast(value, converted);
  return converted;
}

void load_named_weights(Module& model, NamedTensors weights, const std::string& source,
                        const std::function<std::string(const std::string&)>& rename, DType linear_dtype) {
  LazyTensors lazy;
  for (auto& [name, t] : weights) lazy.emplace_back(name, [t = std::move(t)] { return t; });
  weights.clear();
  load_named_weights(model, std::move(lazy), source, rename, linear_dtype);
}

void load_named_weights(Module& model, LazyTensors weights, const std::string& source,
                        const std::function<std::string(const std::string&)>& rename, DType linear_dtype) {
  std::map<std::string, size_t> by_name;  // ours -> index in weights
  for (size_t i = 0; i < weights.size(); ++i) by_name[rename(weights[i].first)] = i;
  const std::map<std::string, WeightLayout> lowered =
      linear_dtype == DType::F32 ? std::map<std::string, WeightLayout>{} : lowerable_linear_weights(model);
  for (const auto& [name, param] : model.named_parameters()) {
    auto it = by_name.find(name);
    if (it == by_name.end()) throw FormatError(fmt::format("{}: tensor '{}' is missing", source, name));
    const std::string stored_name = weights[it->second].first;
    Tensor stored = weights[it->second].second();
    weights[it->second].second = nullptr;  // the list lets it go
    const auto low = lowered.find(name);
    const DType want = low != lowered.end() ? linear_dtype : DType::F32;
    // Blocks read as they are (a quantized GGUF for a base of its type) are (out, in).
    const bool blocks = is_block_quantized(stored.dtype());
    const bool out_in = blocks && low != lowered.end() && low->second == WeightLayout::kInOut;
    const Shape expected = out_in ? Shape{param.dim(1), param.dim(0)} : param.shape();
    if (stored.shape() != expected)
      throw FormatError(fmt::format("{}: tensor '{}' is {} but the config makes it {}", source, stored_name,
                                    stored.shape().str(), expected.str()));
    Tensor value = stored;
    if (blocks ? stored.dtype() != want : !is_float(value.dtype()))
      throw FormatError(fmt::format("{}: tensor '{}' is stored as {}, but a weight must be F32, BF16 or F16",
                                    source, stored_name, blocks ? std::string(dtype_name(stored.dtype()))
                                                                : safetensors_code(value.dtype())));
    require_finite(value, stored_name, source);
    if (value.dtype() != want) {
      // One tensor at a time, straight from the file's dtype: the base is never whole in f32.
      const WeightLayout layout = low != lowered.end() ? low->second : WeightLayout::kOutIn;
      value = to_base_dtype(value, want, layout, source, stored_name);
      release_mapped_pages(stored);
    }
    model.set_parameter(name, value);
  }
}

}  // namespace bb
