// The shared parts of image classifiers: the summed loss, the initialisation and the factory.
#include "models/image_classifier.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"
#include "models/mobilenet.h"
#include "models/resnet.h"
#include "ops/ops.h"

namespace bb {

void ImageModelOptions::validate() const {
  if (in_channels <= 0) throw ConfigError(fmt::format("model.in_channels must be positive, got {}", in_channels));
  if (classes <= 0) throw ConfigError(fmt::format("model.classes must be positive, got {}", classes));
  if (!(width > 0.0f)) throw ConfigError(fmt::format("model.width must be positive, got {}", width));
  if (depth <= 0) throw ConfigError(fmt::format("model.depth must be positive, got {}", depth));
  if (norm_groups <= 0)
    throw ConfigError(fmt::format("model.norm_groups must be positive, got {}", norm_groups));
}

int64_t scaled_channels(int64_t channels, float width) {
  return std::max<int64_t>(1, std::llround(static_cast<double>(channels) * width));
}

Tensor ImageClassifier::loss(const Tensor& images, const Tensor& labels, const Context& ctx,
                             int64_t* count) const {
  // Logits are few (N, classes): f32 costs nothing and keeps the loss exact under bf16.
  return cross_entropy(cast(logits(images, ctx), DType::F32), labels, -100, count);
}

void ImageClassifier::init_weights() {
  for (auto& [name, t] : named_parameters()) {
    if (!t.requires_grad() || name.size() < 7 || name.compare(name.size() - 7, 7, ".weight") != 0)
      continue;
    if (t.ndim() == 4) {  // (O, KH, KW, I/groups): fan_out = O * KH * KW
      const double fan_out = static_cast<double>(t.dim(0) * t.dim(1) * t.dim(2));
      init_normal(t, static_cast<float>(std::sqrt(2.0 / fan_out)), opt_.seed, name);
    } else if (t.ndim() == 2) {
      init_normal(t, 0.01f, opt_.seed, name);
    }
  }
}

std::unique_ptr<ImageClassifier> make_image_classifier(const ImageModelOptions& o, Device device) {
  o.validate();
  if (o.arch == "resnet") return std::make_unique<ResNet>(o, device);
  if (o.arch == "mobilenetv2") return std::make_unique<MobileNetV2>(o, device);
  throw ConfigError(fmt::format("model.arch '{}' is not a vision model (resnet, mobilenetv2)", o.arch));
}

}  // namespace bb
