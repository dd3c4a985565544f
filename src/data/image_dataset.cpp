// Image batches: epoch order, augmentation draws and normalisation.
#include "data/image_dataset.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace bb {

void ImageSet::limit(int64_t n) {
  if (n <= 0 || n >= count) return;
  count = n;
  pixels.resize(n * height * width * channels);
  labels.resize(n);
}

void ImageSet::channel_stats(std::vector<float>& mean, std::vector<float>& std) const {
  std::vector<double> sum(channels, 0.0), sq(channels, 0.0);
  const int64_t per = height * width;
  for (int64_t i = 0; i < count * per; ++i)
    for (int64_t c = 0; c < channels; ++c) {
      const double v = pixels[i * channels + c] / 255.0;
      sum[c] += v;
      sq[c] += v * v;
    }
  mean.assign(channels, 0.0f);
  std.assign(channels, 1.0f);
  const double n = static_cast<double>(std::max<int64_t>(count * per, 1));
  for (int64_t c = 0; c < channels; ++c) {
    const double m = sum[c] / n;
    mean[c] = static_cast<float>(m);
    std[c] = static_cast<float>(std::sqrt(std::max(sq[c] / n - m * m, 1e-12)));
  }
}

ImageDataset::ImageDataset(ImageSet set, ImageTransform t) : set_(std::move(set)), t_(std::move(t)) {
  if (set_.count <= 0) throw FormatError(fmt::format("{} holds no images", set_.source));
  if (set_.channels < 1 || set_.channels > 8)
    throw FormatError(fmt::format("{}: images with {} channels are not supported (1 to 8)", set_.source, set_.channels));
  const size_t c = static_cast<size_t>(set_.channels);
  if (t_.mean.empty() && t_.std.empty()) set_.channel_stats(t_.mean, t_.std);
  if (t_.mean.size() == 1 && c > 1) t_.mean.assign(c, t_.mean[0]);
  if (t_.std.size() == 1 && c > 1) t_.std.assign(c, t_.std[0]);
  if (t_.mean.size() != c || t_.std.size() != c)
    throw ConfigError(fmt::format("data.mean and data.std need 1 or {} values for the {}-channel images of {}", c, c,
                                  set_.source));
  for (float s : t_.std)
    if (!(s > 0)) throw ConfigError(fmt::format("data.std values must be positive, got {}", s));
  if (t_.crop_padding < 0) throw ConfigError("data.crop_padding must not be negative");
  order_ = EpochOrder(set_.count, t_.seed);
}

int64_t ImageDataset::index_of(int64_t sample) const {
  if (!t_.shuffle) return sample % set_.count;
  std::lock_guard<std::mutex> lock(mu_);
  return order_(sample);
}

void ImageDataset::write_sample(int64_t sample, int64_t image, float* out) const {
  const int64_t h = set_.height, w = set_.width, c = set_.channels, pad = t_.crop_padding;
  const uint8_t* img = set_.pixels.data() + image * h * w * c;
  // Draws keyed by (seed, global sample index): the sample index already names the epoch.
  const uint64_t r = mix64(mix64(t_.seed ^ 0xA0761D6478BD642Full) ^ static_cast<uint64_t>(sample));
  const int64_t dy = pad > 0 ? static_cast<int64_t>(r % (2 * pad + 1)) - pad : 0;
  const int64_t dx = pad > 0 ? static_cast<int64_t>((r >> 16) % (2 * pad + 1)) - pad : 0;
  const bool flip = t_.flip && ((r >> 63) & 1);
  float scale[8], shift[8];
  for (int64_t k = 0; k < c && k < 8; ++k) {
    scale[k] = 1.0f / (255.0f * t_.std[k]);
    shift[k] = -t_.mean[k] / t_.std[k];
  }
  for (int64_t y = 0; y < h; ++y) {
    const int64_t sy = y + dy;
    for (int64_t x = 0; x < w; ++x) {
      const int64_t sx = (flip ? w - 1 - x : x) + dx;
      const bool inside = sy >= 0 && sy < h && sx >= 0 && sx < w;  // outside: zero padding
      for (int64_t k = 0; k < c; ++k) {
        const float v = inside ? img[(sy * w + sx) * c + k] : 0.0f;
        out[(y * w + x) * c + k] = v * scale[k] + shift[k];
      }
    }
  }
}

Batch ImageDataset::batch(int64_t first, int64_t count) const {
  Batch b;
  const int64_t per = set_.height * set_.width * set_.channels;
  b.tokens = Tensor::empty(Shape{count, set_.height, set_.width, set_.channels}, DType::F32);
  b.targets = Tensor::empty(Shape{count}, DType::I64);
  float* x = b.tokens.data<float>();
  int64_t* y = b.targets.data<int64_t>();
  for (int64_t i = 0; i < count; ++i) {
    const int64_t image = index_of(first + i);
    write_sample(first + i, image, x + i * per);
    y[i] = set_.labels[image];
  }
  b.target_count = count;
  b.samples = count;
  return b;
}

}  // namespace bb
