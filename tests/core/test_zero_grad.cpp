// zero_grad marks a gradient zero without writing it: the next gradient is copied over the
// stale buffer, and a read before any gradient arrives writes the zeros first.
#include <gtest/gtest.h>

#include <vector>

#include "autograd/backward.h"
#include "core/tensor.h"
#include "ops/ops.h"

namespace bb {
namespace {

TEST(ZeroGrad, TheNextGradientReplacesWhatTheBufferHeld) {
  Tensor x = Tensor::from_floats(Shape{3}, {1, 2, 3}).set_requires_grad(true);
  Tensor seed = Tensor::from_floats(Shape{3}, {1, 10, 100});
  backward(scale(x, 2.0f), seed);
  EXPECT_EQ(x.grad().to_floats(), (std::vector<float>{2, 20, 200}));
  backward(scale(x, 2.0f), seed);  // without zero_grad, gradients add up
  EXPECT_EQ(x.grad().to_floats(), (std::vector<float>{4, 40, 400}));

  const void* buffer = x.grad().raw();
  x.zero_grad();
  backward(scale(x, 3.0f), seed);  // copied over the stale 4, 40, 400
  EXPECT_EQ(x.grad().to_floats(), (std::vector<float>{3, 30, 300}));
  EXPECT_EQ(x.grad().raw(), buffer);  // the same buffer: nothing is reallocated a step
  backward(scale(x, 1.0f), seed);     // and the one after it adds
  EXPECT_EQ(x.grad().to_floats(), (std::vector<float>{4, 40, 400}));
}

TEST(ZeroGrad, AGradientReadBeforeAnyArrivesIsZero) {
  Tensor x = Tensor::from_floats(Shape{4}, {1, 2, 3, 4}).set_requires_grad(true);
  backward(scale(x, 5.0f), Tensor::from_floats(Shape{4}, {1, 1, 1, 1}));
  x.zero_grad();
  EXPECT_EQ(x.grad().to_floats(), (std::vector<float>{0, 0, 0, 0}));
  // The zeros are real now: a later gradient adds to them.
  backward(scale(x, 2.0f), Tensor::from_floats(Shape{4}, {1, 2, 3, 4}));
  EXPECT_EQ(x.grad().to_floats(), (std::vector<float>{2, 4, 6, 8}));
}

TEST(ZeroGrad, ABf16GradientIsWidenedIntoTheF32Buffer) {
  Tensor x = Tensor::from_floats(Shape{2}, {1, 2}, DType::BF16).set_requires_grad(true);
  Tensor seed = Tensor::from_floats(Shape{2}, {0.5f, 8}, DType::BF16);
  backward(scale(x, 2.0f), seed);
  x.zero_grad();
  backward(scale(x, 2.0f), seed);
  EXPECT_EQ(x.grad().dtype(), DType::F32);
  EXPECT_EQ(x.grad().to_floats(), (std::vector<float>{1, 16}));
}

// A negative chunk size is refused with a sentence naming it (0 picks the default).
TEST(ZeroGrad, LinearCrossEntropyRefusesANegativeChunk) {
  Tensor x = Tensor::full(Shape{4, 8}, 0.1f), w = Tensor::full(Shape{5, 8}, 0.1f);
  Tensor t = Tensor::from_ints(Shape{4}, {0, 1, 2, 3});
  try {
    linear_cross_entropy(x, w, t, -100, nullptr, -3);
    ADD_FAILURE() << "a negative chunk_rows was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("chunk_rows -3"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(linear_cross_entropy(x, w, t, -100, nullptr, 0));
}

}  // namespace
}  // namespace bb
