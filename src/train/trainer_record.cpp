// Parsing and checking trainer.json (see trainer_record.h).
#include "train/trainer_record.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace bb {

using nlohmann::json;

namespace {

const json& field(const json& j, const char* key, const std::string& path) {
  if (!j.contains(key)) throw FormatError(fmt::format("{} has no field '{}'", path, key));
  return j[key];
}

int64_t count_field(const json& j, const char* key, const std::string& path) {
  const json& v = field(j, key, path);
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)))
    throw FormatError(fmt::format("{}: field '{}' must be an integer, got {}", path, key, v.dump()));
  const int64_t n = v.get<int64_t>();
  if (n < 0) throw FormatError(fmt::format("{}: field '{}' must not be negative, got {}", path, key, n));
  return n;
}

}  // namespace

CheckpointInfo parse_trainer_record(const std::string& text, const std::string& path) {
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) throw FormatError(fmt::format("{} is not valid JSON", path));
  if (!j.is_object()) throw FormatError(fmt::format("{} does not hold a JSON object", path));
  CheckpointInfo info;
  info.optimizer_steps = count_field(j, "optimizer_steps", path);
  info.skipped_steps = count_field(j, "skipped_steps", path);
  info.cursor = count_field(j, "cursor", path);
  info.clean_steps = count_field(j, "clean_steps", path);
  const json& scale = field(j, "loss_scale", path);
  const double s = scale.is_number() ? scale.get<double>() : -1.0;
  if (!scale.is_number() || !(s > 0) || s > std::numeric_limits<float>::max())
    throw FormatError(fmt::format("{}: field 'loss_scale' must be a positive finite number, got {}", path,
                                  scale.dump()));
  info.loss_scale = static_cast<float>(s);
  if (j.contains("config")) {
    if (!j["config"].is_string())
      throw FormatError(fmt::format("{}: field 'config' must be a string, got {}", path, j["config"].dump()));
    info.config_yaml = j["config"].get<std::string>();
  }
  return info;
}

}  // namespace bb
