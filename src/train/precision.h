// The precision policy the trainer is given (never a global): the dtype of activations and
// matmuls, and for fp16 the dynamic loss scaler. Master weights and gradient accumulators
// are f32 under every policy.
#pragma once
#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace bb {

enum class Precision { kFP32, kBF16, kFP16 };
Precision parse_precision(const std::string& name);  // "fp32", "bf16", "fp16"; ConfigError else
std::string precision_name(Precision p);
DType compute_dtype(Precision p);

// Dynamic loss scaling for fp16: the loss is multiplied by scale() before backward. At the
// end of a window the trainer reports whether the gradients overflowed; an overflow skips
// the step and halves the scale, and `growth_interval` clean steps in a row double it. The
// scale never changes inside a window.
struct LossScalerOptions {
  float init_scale = 65536.0f;
  int64_t growth_interval = 2000;
  float backoff = 0.5f;
  float growth = 2.0f;
  float min_scale = 1.0f;
};

class LossScaler {
 public:
  LossScaler() : enabled_(false), scale_(1.0f) {}
  explicit LossScaler(LossScalerOptions o) : enabled_(true), opt_(o), scale_(o.init_scale) {}
  bool enabled() const { return enabled_; }
  float scale() const { return scale_; }
  // Called once per window with the overflow verdict; returns true when the step may run.
  bool update(bool overflow);
  int64_t clean_steps() const { return clean_; }
  void restore(float scale, int64_t clean) {
    scale_ = scale;
    clean_ = clean;
  }

 private:
  bool enabled_;
  LossScalerOptions opt_;
  float scale_;
  int64_t clean_ = 0;
};

}  // namespace bb
