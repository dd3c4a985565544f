// BatchNorm under gradient accumulation: kMicro merges a window's statistics exactly (running
// statistics equal one batch of K*B), kFrozen never moves them, kGroup (GroupNorm) gives the
// gradients of one large batch, and a checkpoint replay adds nothing to the window.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "autograd/backward.h"
#include "autograd/checkpoint.h"
#include "dist/communicator.h"
#include "nn/vision_layers.h"
#include "ops/ops.h"
#include "optim/optimizer.h"
#include "optim/schedule.h"
#include "train/trainer.h"
#include "vision_fixtures.h"

namespace bb::test {
namespace {

constexpr int64_t kC = 6, kH = 4, kW = 4;

// Images with channel means far from zero (5 + c), so a naive sum-of-squares would cancel.
Tensor images(int64_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n * kH * kW * kC);
  for (size_t i = 0; i < v.size(); ++i) v[i] = 5.0f + float(i % kC) + d(gen) * (1.0f + float(i % kC));
  return Tensor::from_floats(Shape{n, kH, kW, kC}, v);
}

const Context kTrain{.compute = DType::F32, .training = true};

// After K micro-batches (of uneven sizes), running statistics are PyTorch's update for one
// batch of all the window's rows: mean, and the unbiased variance, with momentum applied once.
TEST(BatchNormModes, MicroWindowEqualsOneLargeBatch) {
  const std::vector<int64_t> sizes{3, 5, 2, 6};
  BatchNorm2d split(BatchNormOptions{.channels = kC}, Device::CPU);
  BatchNorm2d whole(BatchNormOptions{.channels = kC}, Device::CPU);
  std::vector<float> all;
  for (size_t k = 0; k < sizes.size(); ++k) {
    Tensor x = images(sizes[k], 100 + k);
    split.forward(x, kTrain);
    for (float v : x.to_floats()) all.push_back(v);
  }
  const int64_t rows = int64_t(all.size()) / kC;
  whole.forward(Tensor::from_floats(Shape{rows, 1, 1, kC}, all), kTrain);
  EXPECT_EQ(split.window().count, double(rows));
  split.finish_window();
  whole.finish_window();
  EXPECT_EQ(split.window().count, 0.0);
  for (int64_t c = 0; c < kC; ++c) {
    double m = 0, ss = 0;
    for (int64_t r = 0; r < rows; ++r) m += all[r * kC + c];
    m /= double(rows);
    for (int64_t r = 0; r < rows; ++r) ss += (all[r * kC + c] - m) * (all[r * kC + c] - m);
    const double rm = 0.1 * m, rv = 0.9 + 0.1 * ss / double(rows - 1);
    // 1e-5 relative: the f32 batch statistics carry ~1e-7; the merge itself is double.
    EXPECT_NEAR(split.parameter("running_mean").to_floats()[c], rm, 1e-5 * std::max(1.0, std::fabs(rm))) << c;
    EXPECT_NEAR(split.parameter("running_var").to_floats()[c], rv, 1e-5 * std::max(1.0, rv)) << c;
    EXPECT_NEAR(whole.parameter("running_mean").to_floats()[c], rm, 1e-5 * std::max(1.0, std::fabs(rm))) << c;
    EXPECT_NEAR(whole.parameter("running_var").to_floats()[c], rv, 1e-5 * std::max(1.0, rv)) << c;
  }
  EXPECT_EQ(split.parameter("num_batches_tracked").to_ints()[0], 1);
  EXPECT_FALSE(split.parameter("running_mean").requires_grad());
}

// A replay (Context::recomputing) normalises identically and adds nothing to the window; so
// does a real checkpoint() around the layer, whose backward replays it.
TEST(BatchNormModes, ReplayDoesNotAccumulateAgain) {
  BatchNorm2d bn(BatchNormOptions{.channels = kC}, Device::CPU);
  Tensor x = images(4, 7);
  Tensor y1 = bn.forward(x, kTrain);
  const BatchNorm2d::Window before = bn.window();
  Context replay = kTrain;
  replay.recomputing = true;
  Tensor y2 = bn.forward(x, replay);
  EXPECT_EQ(y1.to_floats(), y2.to_floats());
  EXPECT_EQ(bn.window().count, before.count);
  EXPECT_EQ(bn.window().mean, before.mean);
  EXPECT_EQ(bn.window().m2, before.m2);

  BatchNorm2d ck(BatchNormOptions{.channels = kC}, Device::CPU);
  Tensor xin = x.clone(Category::Activations);
  xin.set_requires_grad(true);
  Block block = [&](const Tensor& in, bool recomputing) {
    Context c = kTrain;
    c.recomputing = recomputing;
    return ck.forward(in, c, Tensor(), FusedAct::kRelu);
  };
  backward(sum_all(checkpoint(block, xin)));
  EXPECT_EQ(ck.window().count, double(4 * kH * kW));
  EXPECT_EQ(ck.window().mean, bn.window().mean);
  ASSERT_TRUE(ck.parameter("weight").grad().defined());
}

// Trainer-level: the stem norm sees the same images either way, so its running statistics
// after one window of 3 x 4 equal those after one batch of 12.
struct VisionRun {
  std::unique_ptr<ImageClassifier> model;
  SGD opt;
  SingleProcess comm;
  Trainer trainer;
  VisionRun(const Dataset& data, BatchNormMode mode, int64_t micro, int64_t accum)
      : model(make_image_classifier(tiny_resnet(mode))),
        opt(default_param_groups(model->named_parameters()), SGDOptions{.momentum = 0.9f}),
        trainer([m = model.get()](const Batch& b, const Context& ctx, int64_t* count) {
                  return m->loss(b.tokens, b.targets, ctx, count);
                },
                opt, data, Schedule{.kind = "constant", .lr = 1e-2f},
                TrainerOptions{.micro_batch = micro, .grad_accum = accum, .grad_clip = 0.0f}, comm) {
    trainer.on_window_end([m = model.get()] { m->finish_window(); });
  }
};

TEST(BatchNormModes, TrainerWindowUpdatesRunningStatsOnce) {
  RandomImages data(64, 12, 12, 1, 5, 3);
  VisionRun split(data, BatchNormMode::kMicro, 4, 3), whole(data, BatchNormMode::kMicro, 12, 1);
  split.trainer.step();
  whole.trainer.step();
  for (const char* n : {"stem.1.running_mean", "stem.1.running_var"}) {
    std::vector<float> a = split.model->parameter(n).to_floats(), b = whole.model->parameter(n).to_floats();
    for (size_t c = 0; c < a.size(); ++c) EXPECT_NEAR(a[c], b[c], 1e-5 * std::max(1.0f, std::fabs(b[c]))) << n;
  }
  for (auto& [name, t] : split.model->named_parameters()) {
    if (name.find("num_batches_tracked") != std::string::npos) {
      EXPECT_EQ(t.to_ints()[0], 1) << name;
    }
  }
}

TEST(BatchNormModes, FrozenNeverMovesRunningStatsButTrainsAffine) {
  RandomImages data(64, 12, 12, 1, 5, 4);
  VisionRun run(data, BatchNormMode::kFrozen, 4, 2);
  std::map<std::string, std::vector<float>> before;
  for (auto& [name, t] : run.model->named_parameters())
    if (name.find("running") != std::string::npos) before[name] = t.to_floats();
  StepResult r = run.trainer.compute_gradients();
  double bn_grad = 0;
  for (float g : run.model->parameter("l1.b1.weight").grad().to_floats()) bn_grad += std::fabs(g);
  EXPECT_GT(bn_grad, 0.0);
  run.trainer.apply_gradients(r);
  run.trainer.step();
  for (auto& [name, v] : before) EXPECT_EQ(run.model->parameter(name).to_floats(), v) << name;
  EXPECT_EQ(run.model->parameter("stem.1.num_batches_tracked").to_ints()[0], 0);

  // In training, a frozen norm computes what eval does.
  BatchNorm2d bn(BatchNormOptions{.channels = kC, .mode = BatchNormMode::kFrozen}, Device::CPU);
  Tensor x = images(2, 9);
  EXPECT_EQ(bn.forward(x, kTrain).to_floats(), bn.forward(x, Context{}).to_floats());
  EXPECT_EQ(bn.window().count, 0.0);
}

// GroupNorm does not look across samples: 3 x 4 accumulated gives the gradients of 12.
TEST(BatchNormModes, GroupModeGradientsMatchOneLargeBatch) {
  RandomImages data(64, 12, 12, 1, 5, 5);
  VisionRun split(data, BatchNormMode::kGroup, 4, 3), whole(data, BatchNormMode::kGroup, 12, 1);
  for (auto& [name, t] : split.model->named_parameters())
    EXPECT_EQ(name.find("running"), std::string::npos) << name;
  split.trainer.compute_gradients();
  whole.trainer.compute_gradients();
  auto pa = split.model->named_parameters(), pb = whole.model->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    std::vector<float> a = pa[i].second.grad().to_floats(), b = pb[i].second.grad().to_floats();
    double d = 0, s = 0;
    for (size_t j = 0; j < a.size(); ++j) {
      d = std::max(d, std::fabs(double(a[j]) - b[j]));
      s = std::max(s, std::fabs(double(b[j])));
    }
    // f32 sums in another order: a few ulps of the largest gradient.
    EXPECT_LE(d, 1e-5 * s + 1e-9) << pa[i].first;
  }
}

}  // namespace
}  // namespace bb::test
