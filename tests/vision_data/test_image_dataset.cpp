// Image batches: layout and normalisation, augmentation that depends only on (seed, sample),
// per-epoch shuffles, and the background loader giving exactly the synchronous batches.
#include <gtest/gtest.h>

#include <cmath>

#include "data/image_dataset.h"
#include "data/prefetch.h"

namespace bb {
namespace {

// n images of h x w x c whose pixels encode (image, position) so moves can be traced.
ImageSet synthetic(int64_t n, int64_t h, int64_t w, int64_t c) {
  ImageSet s;
  s.count = n;
  s.height = h;
  s.width = w;
  s.channels = c;
  s.source = "synthetic";
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t p = 0; p < h * w * c; ++p) s.pixels.push_back(static_cast<uint8_t>((i * 37 + p * 3) % 256));
    s.labels.push_back(i % 3);
  }
  s.classes = {"a", "b", "c"};
  return s;
}

std::vector<float> floats(const Batch& b) { return b.tokens.to_floats(); }

TEST(VisionImageDataset, PlainBatchIsNormalisedChannelsLast) {
  ImageTransform t{.mean = {0.5f, 0.25f}, .std = {0.5f, 0.25f}, .shuffle = false};
  ImageDataset d(synthetic(4, 2, 3, 2), t);
  Batch b = d.batch(1, 2);
  EXPECT_EQ(b.tokens.shape(), (Shape{2, 2, 3, 2}));
  EXPECT_EQ(b.targets.dtype(), DType::I64);
  EXPECT_EQ(b.targets.to_ints(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(b.target_count, 2);
  const auto x = floats(b);
  const ImageSet& s = d.images();
  for (int64_t k = 0; k < 12; ++k) {
    const float want = (s.pixels[12 + k] / 255.0f - t.mean[k % 2]) / t.std[k % 2];
    EXPECT_NEAR(x[k], want, 1e-6) << k;
  }
  // Past the end wraps to the next epoch (no shuffle: the same order).
  EXPECT_EQ(d.batch(4, 2).targets.to_ints(), d.batch(0, 2).targets.to_ints());
}

TEST(VisionImageDataset, MeasuredStatisticsWhenNoneGiven) {
  ImageDataset d(synthetic(8, 4, 4, 1), ImageTransform{.shuffle = false});
  const auto x = floats(d.batch(0, 8));
  double sum = 0, sq = 0;
  for (float v : x) sum += v, sq += v * v;
  EXPECT_NEAR(sum / x.size(), 0.0, 1e-4);
  EXPECT_NEAR(sq / x.size(), 1.0, 1e-3);
}

TEST(VisionImageDataset, AugmentationDependsOnlyOnSeedAndSample) {
  ImageTransform t{.mean = {0.f}, .std = {1.f}, .crop_padding = 2, .flip = true, .seed = 7};
  ImageDataset d(synthetic(10, 6, 6, 1), t);
  // One batch of 8 equals four of 2 and any other split.
  const auto whole = floats(d.batch(3, 8));
  std::vector<float> parts;
  for (int64_t first : {3, 5, 7, 9}) {
    auto p = floats(d.batch(first, 2));
    parts.insert(parts.end(), p.begin(), p.end());
  }
  EXPECT_EQ(whole, parts);
  // A second dataset with the same seed gives the same; another seed does not.
  ImageDataset same(synthetic(10, 6, 6, 1), t);
  EXPECT_EQ(floats(same.batch(3, 8)), whole);
  t.seed = 8;
  ImageDataset other(synthetic(10, 6, 6, 1), t);
  EXPECT_NE(floats(other.batch(3, 8)), whole);
  // Crops move content and pad with zero pixels (0 before normalisation): some zeros appear
  // in an epoch, and each image keeps its label.
  const auto epoch = floats(d.batch(0, 10));
  int zeros = 0;
  for (float v : epoch) zeros += v == 0.0f;
  EXPECT_GT(zeros, 0);
}

TEST(VisionImageDataset, ShuffleIsAPermutationPerEpoch) {
  ImageDataset d(synthetic(30, 1, 1, 1), ImageTransform{.mean = {0.f}, .std = {1.f}, .seed = 3});
  auto e0 = floats(d.batch(0, 30)), e1 = floats(d.batch(30, 30));
  EXPECT_NE(e0, e1);
  std::sort(e0.begin(), e0.end());
  std::sort(e1.begin(), e1.end());
  EXPECT_EQ(e0, e1);  // the same images, in another order
  ImageDataset plain(synthetic(30, 1, 1, 1), ImageTransform{.mean = {0.f}, .std = {1.f}, .shuffle = false});
  auto p = floats(plain.batch(0, 30));
  std::sort(p.begin(), p.end());
  EXPECT_EQ(p, e0);
}

TEST(VisionImageDataset, PrefetchGivesTheSynchronousBatches) {
  ImageTransform t{.crop_padding = 1, .flip = true, .seed = 11};
  ImageDataset d(synthetic(25, 5, 5, 3), t);
  PrefetchDataset pre(d, 3);
  // Sequential micro-batches (the trainer's pattern), a partial one, a jump back (resume),
  // and a different size.
  std::vector<std::pair<int64_t, int64_t>> requests;
  for (int64_t f = 0; f < 40; f += 4) requests.push_back({f, 4});
  requests.push_back({40, 3});
  requests.push_back({8, 4});
  requests.push_back({12, 4});
  requests.push_back({16, 6});
  for (auto [first, count] : requests) {
    Batch a = pre.batch(first, count), b = d.batch(first, count);
    EXPECT_EQ(floats(a), floats(b)) << first;
    EXPECT_EQ(a.targets.to_ints(), b.targets.to_ints()) << first;
    EXPECT_EQ(a.samples, count);
  }
  EXPECT_GT(pre.hits(), 5);  // the sequential run was served from the queue
  EXPECT_EQ(pre.size(), 25);
}

}  // namespace
}  // namespace bb
