// The vision models: ResNet at its default size is the PyTorch peer's network (names, shapes,
// parameter count), both models train a step in f32 and bf16, the factory names what it
// cannot build, and the meta backend counts the bytes of a forward and backward exactly as
// the CPU does (docs/notes/memory-accounting.md).
#include <gtest/gtest.h>

#include <array>
#include <string>

#include "autograd/backward.h"
#include "core/allocator.h"
#include "core/error.h"
#include "ops/ops.h"
#include "vision_fixtures.h"

namespace bb::test {
namespace {

// /work/shared/peers/torch_cnn_bench.py's Net: 308074 trainable values, 56 state_dict
// entries (each BatchNorm adds running_mean, running_var, num_batches_tracked).
TEST(VisionModels, ResNetIsThePeerNetwork) {
  auto m = make_image_classifier(ImageModelOptions{});
  auto named = m->named_parameters();
  EXPECT_EQ(named.size(), 56u);
  int64_t trainable = 0;
  for (auto& [n, t] : named)
    if (t.requires_grad()) trainable += t.numel();
  EXPECT_EQ(trainable, 308074);
  EXPECT_EQ(named.front().first, "stem.0.weight");
  EXPECT_EQ(m->parameter("stem.0.weight").shape(), (Shape{32, 3, 3, 1}));  // (O, KH, KW, I)
  EXPECT_EQ(m->parameter("l2.sc.0.weight").shape(), (Shape{64, 1, 1, 32}));
  EXPECT_EQ(m->parameter("l3.b2.running_var").shape(), (Shape{128}));
  EXPECT_EQ(m->parameter("fc.weight").shape(), (Shape{10, 128}));
  EXPECT_EQ(named.back().first, "fc.bias");
  EXPECT_THROW(m->parameter("l1.sc.0.weight"), ShapeError);  // 32 -> 32, stride 1: identity
}

TEST(VisionModels, DepthAndWidthNameExtraBlocks) {
  ImageModelOptions o{.in_channels = 3, .width = 0.5f, .depth = 2};
  auto m = make_image_classifier(o);
  EXPECT_EQ(m->parameter("l2_1.c1.weight").shape(), (Shape{32, 3, 3, 32}));
  EXPECT_EQ(m->parameter("stem.0.weight").shape(), (Shape{16, 3, 3, 3}));
}

TEST(VisionModels, FactoryNamesUnknownArchAndBadOptions) {
  try {
    make_image_classifier(ImageModelOptions{.arch = "vgg"});
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("vgg"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_image_classifier(ImageModelOptions{.width = 0.0f}), ConfigError);
  auto m = make_image_classifier(ImageModelOptions{});
  EXPECT_THROW(m->logits(Tensor::zeros(Shape{2, 28, 28, 3}), Context{}), ShapeError);
}

struct ModelCase {
  std::string name;
  ImageModelOptions opt;
  DType compute;
};
void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.name; }

std::vector<ModelCase> model_cases() {
  ImageModelOptions mobile{.arch = "mobilenetv2", .in_channels = 3, .width = 0.5f, .seed = 2};
  ImageModelOptions group = tiny_resnet(BatchNormMode::kGroup);
  return {{"resnet_f32", ImageModelOptions{.in_channels = 3, .width = 0.5f}, DType::F32},
          {"resnet_bf16", ImageModelOptions{.in_channels = 3, .width = 0.5f}, DType::BF16},
          {"resnet_group", group, DType::F32},
          {"mobilenetv2_f32", mobile, DType::F32},
          {"mobilenetv2_bf16", mobile, DType::BF16}};
}

class VisionModel : public ::testing::TestWithParam<ModelCase> {};

// One loss and backward: the loss is a sum over the batch (count = N), logits are
// (N, classes), and every trainable parameter gets a finite f32 gradient.
TEST_P(VisionModel, LossIsASumAndEveryParameterGetsAGradient) {
  const ModelCase& c = GetParam();
  auto m = make_image_classifier(c.opt);
  const int64_t n = 4, hw = 16;
  RandomImages data(n, hw, hw, c.opt.in_channels, c.opt.classes, 1);
  Batch b = data.batch(0, n);
  Context ctx{.compute = c.compute, .training = true};
  EXPECT_EQ(m->logits(b.tokens, ctx).shape(), (Shape{n, c.opt.classes}));
  int64_t count = 0;
  Tensor loss = m->loss(b.tokens, b.targets, ctx, &count);
  EXPECT_EQ(count, n);
  // Near-uniform logits at initialisation: about log(classes) per sample, summed.
  EXPECT_NEAR(loss.item() / n, std::log(double(c.opt.classes)), 1.0);
  backward(loss);
  for (auto& [name, t] : m->named_parameters()) {
    if (!t.requires_grad()) continue;
    ASSERT_TRUE(t.grad().defined()) << name;
    EXPECT_EQ(t.grad().dtype(), DType::F32) << name;
    for (float g : t.grad().to_floats()) ASSERT_TRUE(std::isfinite(g)) << name;
  }
}

struct Accounting {
  std::array<int64_t, kNumCategories> built{}, peak{}, after{}, leaked{};
};

Accounting run(Device dev, const ModelCase& c) {
  Allocator& alloc = Allocator::of(dev);
  const MemoryStats before = alloc.stats();
  Accounting a;
  {
    auto m = make_image_classifier(c.opt, dev);
    const Shape s{4, 16, 16, c.opt.in_channels};
    Tensor images, labels;
    if (dev == Device::Meta) {
      images = Tensor::empty(s, DType::F32, dev);
      labels = Tensor::empty(Shape{4}, DType::I64, dev);
    } else {
      Batch b = RandomImages(4, 16, 16, c.opt.in_channels, c.opt.classes, 2).batch(0, 4);
      images = b.tokens, labels = b.targets;
    }
    const MemoryStats built = alloc.stats();
    alloc.reset_peaks();
    int64_t count = 0;
    backward(m->loss(images, labels, Context{.compute = c.compute, .training = true}, &count));
    const MemoryStats after = alloc.stats();
    for (int k = 0; k < kNumCategories; ++k) {
      a.built[k] = built.live[k] - before.live[k];
      a.peak[k] = after.peak[k] - built.live[k];
      a.after[k] = after.live[k] - built.live[k];
    }
  }
  const MemoryStats end = alloc.stats();
  for (int k = 0; k < kNumCategories; ++k) a.leaked[k] = end.live[k] - before.live[k];
  return a;
}

TEST_P(VisionModel, MetaCountsTheBytesCpuDoes) {
  const Accounting meta = run(Device::Meta, GetParam()), cpu = run(Device::CPU, GetParam());
  for (int k = 0; k < kNumCategories; ++k) {
    const std::string cat(category_name(static_cast<Category>(k)));
    EXPECT_EQ(meta.built[k], cpu.built[k]) << cat;
    EXPECT_EQ(meta.peak[k], cpu.peak[k]) << cat;
    EXPECT_EQ(meta.after[k], cpu.after[k]) << cat;
    EXPECT_EQ(meta.leaked[k], 0) << cat;
    EXPECT_EQ(cpu.leaked[k], 0) << cat;
  }
  EXPECT_GT(cpu.peak[int(Category::Activations)], 0);
  EXPECT_GT(cpu.after[int(Category::Gradients)], 0);
}

INSTANTIATE_TEST_SUITE_P(Vision, VisionModel, ::testing::ValuesIn(model_cases()),
                         [](const ::testing::TestParamInfo<ModelCase>& i) { return i.param.name; });

}  // namespace
}  // namespace bb::test
