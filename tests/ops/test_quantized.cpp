// Block-quantized frozen weights (q8_0, q4_0): the coders are ggml's reference bit for bit
// (through the GGUF encoder's bytes), the CPU dequantization (AVX-512 where built) equals the
// scalar reference exactly, and quantized_linear and its input gradient equal linear on the
// dequantized weight within 1e-5 relative in f32 (only the order of the sums differs, tile by
// tile) and 2e-2 in bf16 (the activation and tile rounding), over shapes of many tiles and a
// partial last tile, in both weight layouts. The LoRA path through a quantized base passes
// finite differences, and the meta backend counts its bytes exactly.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "autograd/backward.h"
#include "core/allocator.h"
#include "core/block_quant.h"
#include "core/error.h"
#include "core/grad_mode.h"
#include "io/gguf_quant.h"
#include "nn/layers.h"
#include "nn/lora.h"
#include "finite_difference.h"
#include "ops/ops.h"

namespace bb {
namespace {

std::vector<float> randn(int64_t n, uint64_t seed, float sd = 1.0f) {
  std::mt19937 gen(static_cast<uint32_t>(seed));
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (float& x : v) x = d(gen);
  return v;
}

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double scale = 0, diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::fabs(double(b[i])));
    diff = std::max(diff, std::fabs(double(a[i]) - double(b[i])));
  }
  return diff / std::max(scale, 1e-30);
}

const DType kBlockTypes[] = {DType::Q8_0, DType::Q4_0};

TEST(BlockQuant, CodersAreTheGgufEncodersAndErrorsAreBoundedByTheScale) {
  std::vector<float> x = randn(32 * 64, 1);
  x[5] = 0;  // a zero among them, and a block of all zeros (scale 0)
  std::fill(x.begin() + 64, x.begin() + 96, 0.0f);
  for (DType t : kBlockTypes) {
    SCOPED_TRACE(dtype_name(t));
    Tensor q = Tensor::from_floats(Shape{64, 32}, x, t);
    ASSERT_EQ(q.nbytes(), 64 * block_bytes(t));
    const auto gg = gguf::encode(t == DType::Q8_0 ? gguf::TensorType::Q8_0 : gguf::TensorType::Q4_0, x, 32);
    ASSERT_EQ(gg.size(), q.nbytes());
    EXPECT_EQ(0, std::memcmp(gg.data(), q.raw(), gg.size()));
    const std::vector<float> back = q.to_floats();
    for (int64_t b = 0; b < 64; ++b) {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
      // q8_0 rounds to steps of amax/127: half a step of error, plus the f16 rounding of the
      // scale (2^-11 relative) times up to 127 steps. q4_0's steps are amax/8 with the largest
      // magnitude at -8 steps; the other end's +8 is clamped to +7: up to a whole step.
      const float bound = t == DType::Q8_0 ? (0.5f + 127.0f / 2048) * amax / 127 : (1.0f + 8.0f / 2048) * amax / 8;
      for (int j = 0; j < 32; ++j) EXPECT_LE(std::fabs(back[b * 32 + j] - x[b * 32 + j]), bound * 1.01f + 1e-7f);
    }
    for (int j = 64; j < 96; ++j) EXPECT_EQ(back[j], 0.0f);
  }
}

TEST(BlockQuant, TheCpuDequantizationEqualsTheReferenceExactly) {
  const std::vector<float> x = randn(32 * 300, 2, 0.05f);
  for (DType t : kBlockTypes) {
    SCOPED_TRACE(dtype_name(t));
    Tensor q = Tensor::from_floats(Shape{300, 32}, x, t);
    std::vector<float> ref(x.size());
    dequantize_blocks(t, q.data<uint8_t>(), q.numel(), ref.data());
    for (DType to : {DType::F32, DType::BF16, DType::F16}) {
      Tensor out = cast(q, to);
      const std::vector<float> got = out.to_floats();
      for (size_t i = 0; i < ref.size(); ++i) {
        const float want = to == DType::F32 ? ref[i] : to == DType::BF16 ? bf16_to_f32(f32_to_bf16(ref[i]))
                                                                         : f16_to_f32(f32_to_f16(ref[i]));
        ASSERT_EQ(got[i], want) << dtype_name(to) << " element " << i;
      }
    }
  }
}

TEST(BlockQuant, BadShapesAreOneSentence) {
  EXPECT_THROW(Tensor::empty(Shape{4, 48}, DType::Q8_0), ShapeError);
  Tensor w = Tensor::from_floats(Shape{8, 40}, randn(320, 3));
  EXPECT_THROW(quantize(w, DType::Q4_0, WeightLayout::kOutIn), ShapeError);
  EXPECT_THROW(quantize(w, DType::BF16, WeightLayout::kOutIn), ShapeError);
  Tensor q = quantize(Tensor::from_floats(Shape{8, 64}, randn(512, 3)), DType::Q8_0, WeightLayout::kOutIn);
  EXPECT_THROW(quantized_linear(Tensor::from_floats(Shape{2, 32}, randn(64, 4)), q, Tensor()), ShapeError);
  EXPECT_THROW(q.view({16, 48}), ShapeError);
}

struct LinearCase {
  int64_t rows, in, out;
  WeightLayout layout;
};

// y = quantized_linear(x, q, bias) and dx, db against linear on the dequantized weight.
void compare_with_dequantized(DType t, DType compute, const LinearCase& c, double tol) {
  SCOPED_TRACE(fmt::format("{} {} rows {} in {} out {} {}", dtype_name(t), dtype_name(compute), c.rows, c.in, c.out,
                           c.layout == WeightLayout::kInOut ? "in-out" : "out-in"));
  const Shape wshape = c.layout == WeightLayout::kOutIn ? Shape{c.out, c.in} : Shape{c.in, c.out};
  Tensor w = Tensor::from_floats(wshape, randn(c.in * c.out, 5, 0.05f));
  Tensor q = quantize(w, t, c.layout);
  ASSERT_EQ(q.shape(), (Shape{c.out, c.in}));
  EXPECT_EQ(q.category(), Category::QuantizedWeights);
  Tensor deq = cast(q, DType::F32);  // (out, in)
  Tensor bias = Tensor::from_floats(Shape{c.out}, randn(c.out, 6)).set_requires_grad(true);
  Tensor bias_ref = Tensor::from_floats(Shape{c.out}, bias.to_floats()).set_requires_grad(true);
  const std::vector<float> xv = randn(c.rows * c.in, 7);
  Tensor x = cast(Tensor::from_floats(Shape{c.rows / 2, 2, c.in}, xv), compute).detach().set_requires_grad(true);
  Tensor x_ref = Tensor::from_floats(Shape{c.rows / 2, 2, c.in}, cast(x, DType::F32).to_floats()).set_requires_grad(true);
  Tensor y = quantized_linear(x, q, bias);
  Tensor y_ref = linear(x_ref, deq, bias_ref, WeightLayout::kOutIn);
  ASSERT_EQ(y.shape(), y_ref.shape());
  EXPECT_LE(max_rel_diff(cast(y, DType::F32).to_floats(), y_ref.to_floats()), tol);
  const std::vector<float> gv = randn(y.numel(), 8);
  backward(y, cast(Tensor::from_floats(y.shape(), gv), compute));
  backward(y_ref, Tensor::from_floats(y.shape(), gv));
  ASSERT_EQ(x.grad().shape(), x.shape());
  EXPECT_LE(max_rel_diff(cast(x.grad(), DType::F32).to_floats(), x_ref.grad().to_floats()), tol);
  EXPECT_LE(max_rel_diff(bias.grad().to_floats(), bias_ref.grad().to_floats()), tol);
}

TEST(QuantizedLinear, EqualsLinearOnTheDequantizedWeight) {
  // in 4096 f32: 64-row tiles, so out 200 is three whole tiles and a partial one; in 96 is one tile.
  const std::vector<LinearCase> cases{{6, 4096, 200, WeightLayout::kOutIn},
                                      {10, 96, 130, WeightLayout::kOutIn},
                                      {4, 2048, 300, WeightLayout::kInOut},
                                      {2, 64, 48, WeightLayout::kInOut}};
  for (DType t : kBlockTypes)
    for (const LinearCase& c : cases) {
      compare_with_dequantized(t, DType::F32, c, 1e-5);
      compare_with_dequantized(t, DType::BF16, c, 2e-2);
    }
}

TEST(QuantizedLinear, TheTileIsAFixedFunctionOfTheShape) {
  EXPECT_EQ(quantized_tile_rows(5632, 2048, DType::BF16), 256);
  EXPECT_EQ(quantized_tile_rows(2048, 5632, DType::F32), 64);
  EXPECT_EQ(quantized_tile_rows(40, 64, DType::F32), 40);
  EXPECT_EQ(quantized_tile_rows(100000, 32, DType::F16), 16384);
}

TEST(QuantizedLinear, TheLoraPathPassesFiniteDifferences) {
  for (DType t : kBlockTypes) {
    SCOPED_TRACE(dtype_name(t));
    ModuleGroup holder;
    auto shared = holder.register_module("lin", std::make_shared<Linear>(LinearOptions{64, 40, true, WeightLayout::kOutIn}, Device::CPU));
    Linear& lin = *shared;
    {
      NoGradGuard g;
      Tensor& w = lin.weight();
      const std::vector<float> v = randn(w.numel(), 9, 0.1f);
      std::copy(v.begin(), v.end(), w.data<float>());
    }
    LoraOptions o;
    o.r = 4;
    o.alpha = 8;
    o.targets = {"lin"};
    o.base_dtype = t;
    o.seed = 3;
    apply_lora(holder, o);
    ASSERT_TRUE(lin.quantized());
    // B starts at zero; give it values so both adapter matrices have gradients.
    const auto& ad = dynamic_cast<const LoraAdapter&>(*lin.adapter());
    Tensor a = ad.a().weight(), b = ad.b().weight();
    {
      const std::vector<float> v = randn(b.numel(), 10, 0.5f);
      std::copy(v.begin(), v.end(), b.data<float>());
    }
    Tensor x = Tensor::from_floats(Shape{3, 64}, randn(192, 11)).set_requires_grad(true);
    Tensor r = Tensor::from_floats(Shape{3, 40}, randn(120, 12));
    auto loss_of = [&]() { return sum_all(mul(lin.forward(x), r)); };
    backward(loss_of());
    std::mt19937 gen(4);
    auto value = [&]() {
      NoGradGuard g;
      return double(loss_of().item());
    };
    test::expect_finite_difference_gradient(a, 0, value, gen, 12);
    test::expect_finite_difference_gradient(b, 1, value, gen, 12);
    test::expect_finite_difference_gradient(x, 2, value, gen, 12);
  }
}

}  // namespace
}  // namespace bb
