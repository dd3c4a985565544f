// ImageClassifier: what training, evaluation and export need from a vision model, so ResNet
// and MobileNetV2 share the trainer and the CLI; and the factory that builds one by name.
// Images are channels-last (N, H, W, C) f32; weights are named and stable (see each model).
#pragma once
#include <memory>
#include <string>

#include "nn/context.h"
#include "nn/module.h"
#include "nn/vision_layers.h"

namespace bb {

struct ImageModelOptions {
  std::string arch = "resnet";  // "resnet" or "mobilenetv2"
  int64_t in_channels = 1;
  int64_t classes = 10;
  float width = 1.0f;           // channel multiplier (channels round to at least 1)
  int64_t depth = 1;            // blocks per stage (resnet), repeat multiplier (mobilenetv2)
  BatchNormMode bn = BatchNormMode::kMicro;
  int64_t norm_groups = 8;      // GroupNorm groups under kGroup (lowered to divide channels)
  uint64_t seed = 0;            // initial weights
  void validate() const;        // throws ConfigError naming the field
};

class ImageClassifier : public Module {
 public:
  // images (N, H, W, in_channels), any float dtype -> logits (N, classes) in ctx.compute.
  virtual Tensor logits(const Tensor& images, const Context& ctx) const = 0;
  // Sum over samples of cross-entropy against labels (N) i64 (f32 scalar); *count = N
  // (labels of -100 excepted): the trainer divides by the window's count.
  Tensor loss(const Tensor& images, const Tensor& labels, const Context& ctx, int64_t* count) const;
  const ImageModelOptions& options() const { return opt_; }
  // Merges each BatchNorm's window statistics into its running ones: call at window end
  // (Trainer::on_window_end). A no-op for kFrozen and kGroup.
  void finish_window() const { bb::finish_window(*this); }

 protected:
  explicit ImageClassifier(const ImageModelOptions& o) : opt_(o) {}
  // Kaiming-normal (fan-out) convolutions, N(0, 0.01) classifier, as torchvision does.
  void init_weights();
  ImageModelOptions opt_;
};

// Builds options.arch; throws ConfigError naming an unknown one.
std::unique_ptr<ImageClassifier> make_image_classifier(const ImageModelOptions& o,
                                                       Device device = Device::CPU);

// channels * width, rounded, at least 1.
int64_t scaled_channels(int64_t channels, float width);

}  // namespace bb
