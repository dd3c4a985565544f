// Precision names and the loss scaler's update rule.
#include "train/precision.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"

namespace bb {

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::kFP32;
  if (name == "bf16") return Precision::kBF16;
  if (name == "fp16") return Precision::kFP16;
  throw ConfigError(fmt::format("train.precision '{}' is not known (fp32, bf16 or fp16)", name));
}

std::string precision_name(Precision p) {
  switch (p) {
    case Precision::kFP32: return "fp32";
    case Precision::kBF16: return "bf16";
    case Precision::kFP16: return "fp16";
  }
  return "?";
}

DType compute_dtype(Precision p) {
  switch (p) {
    case Precision::kFP32: return DType::F32;
    case Precision::kBF16: return DType::BF16;
    case Precision::kFP16: return DType::F16;
  }
  return DType::F32;
}

bool LossScaler::update(bool overflow) {
  if (!enabled_) return !overflow;
  if (overflow) {
    scale_ = std::max(opt_.min_scale, scale_ * opt_.backoff);
    clean_ = 0;
    return false;
  }
  if (++clean_ >= opt_.growth_interval) {
    scale_ *= opt_.growth;
    clean_ = 0;
  }
  return true;
}

}  // namespace bb
