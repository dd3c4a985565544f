// Labelled images in memory (uint8, H x W x C) and the Dataset that hands them out as
// normalised f32 batches (N, H, W, C) with i64 labels (N), shuffled per epoch and augmented
// (random crop with padding, horizontal flip) by draws keyed on (seed, global sample index),
// so that a batch never depends on how the window is split into micro-batches.
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace bb {

struct ImageSet {
  int64_t count = 0, height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;  // (count, H, W, C)
  std::vector<int64_t> labels;  // (count)
  std::vector<std::string> classes;
  std::string source;           // folder or file, for messages

  // The first `n` samples (all when n <= 0 or n >= count).
  void limit(int64_t n);
  // Per-channel mean and standard deviation of the pixels, scaled to [0, 1].
  void channel_stats(std::vector<float>& mean, std::vector<float>& std) const;
};

struct ImageTransform {
  std::vector<float> mean = {}, std = {};  // per channel, on pixels scaled to [0, 1]
  bool shuffle = true;           // a fresh seeded order every epoch (off for test sets)
  int64_t crop_padding = 0;      // random crop of the original size from a zero-padded image
  bool flip = false;             // horizontal flip with probability 1/2
  uint64_t seed = 0;
};

// Batch.tokens holds the images, f32 (N, H, W, C); Batch.targets the labels, i64 (N);
// target_count = samples = N. batch() may be called from a loader thread.
class ImageDataset final : public Dataset {
 public:
  ImageDataset(ImageSet set, ImageTransform t);
  Batch batch(int64_t first, int64_t count) const override;
  int64_t size() const override { return set_.count; }
  const ImageSet& images() const { return set_; }
  const ImageTransform& transform() const { return t_; }

 private:
  int64_t index_of(int64_t sample) const;  // the stored image that global sample `sample` is
  // Augments and normalises stored image `image` as global sample `sample` into out.
  void write_sample(int64_t sample, int64_t image, float* out) const;

  ImageSet set_;
  ImageTransform t_;
  EpochOrder order_;       // the same seeded shuffle per epoch as text documents
  mutable std::mutex mu_;  // guards order_'s cached permutation (batch() runs on a loader thread)
};

}  // namespace bb
