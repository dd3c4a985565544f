// Small in-memory image data and model options for the vision tests: random images with
// labels, handed out by global sample index like the real image datasets (Batch.tokens holds
// the images (N, H, W, C) f32, Batch.targets the labels (N) i64).
#pragma once
#include <random>
#include <vector>

#include "data/dataset.h"
#include "models/image_classifier.h"

namespace bb::test {

class RandomImages final : public Dataset {
 public:
  RandomImages(int64_t count, int64_t h, int64_t w, int64_t c, int64_t classes, uint32_t seed)
      : count_(count), h_(h), w_(w), c_(c) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> px(0.3f, 1.0f);
    pixels_.resize(count * h * w * c);
    for (float& p : pixels_) p = px(gen);
    for (int64_t i = 0; i < count; ++i) labels_.push_back(static_cast<int64_t>(gen() % classes));
  }
  Batch batch(int64_t first, int64_t n) const override {
    const int64_t px = h_ * w_ * c_;
    std::vector<float> img(pixels_.begin() + first * px, pixels_.begin() + (first + n) * px);
    std::vector<int64_t> lab(labels_.begin() + first, labels_.begin() + first + n);
    Batch b;
    b.tokens = Tensor::from_floats(Shape{n, h_, w_, c_}, img);
    b.targets = Tensor::from_ints(Shape{n}, lab);
    b.target_count = b.samples = n;
    return b;
  }
  int64_t size() const override { return count_; }

 private:
  int64_t count_, h_, w_, c_;
  std::vector<float> pixels_;
  std::vector<int64_t> labels_;
};

// A ResNet small enough for many test steps: 12x12x1 images, widths 8, 16, 32.
inline ImageModelOptions tiny_resnet(BatchNormMode mode) {
  return ImageModelOptions{.arch = "resnet", .in_channels = 1, .classes = 5, .width = 0.25f,
                           .depth = 1, .bn = mode, .norm_groups = 4, .seed = 11};
}

}  // namespace bb::test
