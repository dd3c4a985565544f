// The vision ops (conv2d, pooling, batch_norm, group_norm) against PyTorch fixtures from
// scripts/make_vision_fixtures.py: outputs, and gradients of loss = sum(out * r), then the
// same gradients by central finite differences on the f32 cases. Inputs are channels-last;
// the script permuted them for PyTorch.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "autograd/backward.h"
#include "core/error.h"
#include "core/grad_mode.h"
#include "io/safetensors.h"
#include "ops/ops.h"
#include "../ops/finite_difference.h"

namespace bb::test {
namespace {

struct VisionFixture {
  std::vector<Tensor> in, grad;
  Tensor out, r;
  std::map<std::string, std::string> meta;
  int64_t i(const std::string& k) const { return std::stoll(meta.at(k)); }
  double f(const std::string& k) const { return std::stod(meta.at(k)); }
};

VisionFixture load(const std::string& name) {
  SafetensorsFile file(std::string(BIGBATCH_FIXTURES) + "/vision/" + name + ".safetensors");
  VisionFixture fx;
  fx.meta = file.metadata();
  for (int i = 0; file.contains(fmt::format("in.{}", i)); ++i) {
    fx.in.push_back(file.get(fmt::format("in.{}", i)).clone(Category::Activations));
    std::string g = fmt::format("grad.{}", i);
    fx.grad.push_back(file.contains(g) ? file.get(g).clone() : Tensor());
  }
  fx.out = file.get("out").clone();
  fx.r = file.get("r").clone();
  return fx;
}

using Fn = std::function<Tensor(const std::vector<Tensor>&, const VisionFixture&)>;

struct Case {
  std::string name;
  Fn fn;
  double tol = 1e-5;      // normwise, as in tests/ops (max|err| <= tol * max|want|)
  bool finite_diff = true;  // off where a ReLU kink may sit within the step
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

Tensor arg(const std::vector<Tensor>& in, size_t i) { return i < in.size() ? in[i] : Tensor(); }

Tensor conv(const std::vector<Tensor>& in, const VisionFixture& fx) {
  return conv2d(in[0], in[1], arg(in, 2),
                Conv2dParams{.stride = fx.i("stride"), .padding = fx.i("padding"), .groups = fx.i("groups")});
}

Pool2dParams pool(const VisionFixture& fx) {
  return Pool2dParams{.kernel = fx.i("kernel"), .stride = fx.i("stride"), .padding = fx.i("padding")};
}

// Inputs: x, gamma, beta, then running mean and var (eval only), then the residual.
Tensor bn(const std::vector<Tensor>& in, const VisionFixture& fx) {
  const bool training = fx.i("training") != 0;
  const std::string act = fx.meta.at("act");
  const FusedAct a = act == "relu" ? FusedAct::kRelu : act == "relu6" ? FusedAct::kRelu6 : FusedAct::kNone;
  const size_t stats = training ? 3 : 5;
  Tensor residual = fx.i("residual") ? in[stats] : Tensor();
  return batch_norm(in[0], in[1], in[2], training ? Tensor() : in[3], training ? Tensor() : in[4],
                    training, float(fx.f("eps")), residual, a);
}

const double kBF16 = 2e-2;

std::vector<Case> cases() {
  return {
      {"conv2d_bias", conv},
      {"conv2d_strided", conv},
      {"conv2d_1x1_strided", conv},
      {"conv2d_grouped", conv},
      {"conv2d_depthwise", conv},
      {"conv2d_bf16", conv, kBF16},
      {"max_pool2d_k2", [](auto& in, auto& fx) { return max_pool2d(in[0], pool(fx)); }},
      {"max_pool2d_k3s2p1", [](auto& in, auto& fx) { return max_pool2d(in[0], pool(fx)); }},
      {"avg_pool2d_k2", [](auto& in, auto& fx) { return avg_pool2d(in[0], pool(fx)); }},
      {"avg_pool2d_k3s2p1", [](auto& in, auto& fx) { return avg_pool2d(in[0], pool(fx)); }},
      {"global_avg_pool", [](auto& in, auto&) { return global_avg_pool(in[0]); }},
      {"global_avg_pool_bf16", [](auto& in, auto&) { return global_avg_pool(in[0]); }, kBF16},
      {"batch_norm_train", bn},
      {"batch_norm_eval", bn},
      {"batch_norm_train_residual_relu", bn, 1e-5, false},
      {"batch_norm_eval_relu6", bn, 1e-5, false},
      {"batch_norm_train_bf16", bn, kBF16},
      {"group_norm", [](auto& in, auto& fx) {
         return group_norm(in[0], in[1], in[2], fx.i("groups"), float(fx.f("eps")));
       }},
  };
}

::testing::AssertionResult close(const Tensor& got, const Tensor& want, double rtol) {
  std::vector<float> g = got.to_floats(), w = want.to_floats();
  if (g.size() != w.size()) return ::testing::AssertionFailure() << g.size() << " values, want " << w.size();
  double scale = 1e-6, err = 0;
  size_t worst = 0;
  for (size_t j = 0; j < w.size(); ++j) {
    scale = std::max(scale, std::fabs(double(w[j])));
    double e = std::fabs(double(g[j]) - double(w[j]));
    if (!(e <= err)) err = std::isnan(e) ? INFINITY : e, worst = j;
  }
  if (err <= rtol * scale) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max error " << err / scale << " of max|want| " << scale
                                       << " at [" << worst << "]: got " << g[worst] << ", want " << w[worst];
}

Tensor weighted(const Tensor& out, const Tensor& r) {
  return sum_all(mul(cast(out, DType::F32), cast(r, DType::F32)));
}

class VisionOps : public ::testing::TestWithParam<Case> {};

TEST_P(VisionOps, MatchesTorch) {
  const Case& c = GetParam();
  VisionFixture fx = load(c.name);
  for (size_t i = 0; i < fx.in.size(); ++i)
    if (fx.grad[i].defined()) fx.in[i].set_requires_grad(true);
  Tensor out = c.fn(fx.in, fx);
  EXPECT_EQ(out.dtype(), fx.out.dtype());
  ASSERT_EQ(out.shape(), fx.out.shape()) << out.desc();
  EXPECT_TRUE(close(out, fx.out, c.tol)) << "out";
  backward(weighted(out, fx.r));
  for (size_t i = 0; i < fx.in.size(); ++i) {
    if (!fx.grad[i].defined()) continue;
    ASSERT_TRUE(fx.in[i].grad().defined()) << "in." << i << " got no gradient";
    EXPECT_TRUE(close(fx.in[i].grad(), fx.grad[i], c.tol)) << "grad." << i;
  }
}

// Central differences on 12 random elements of each input that gets a gradient, with the
// bound tests/ops uses (tests/ops/finite_difference.h).
TEST_P(VisionOps, FiniteDifferenceGradient) {
  const Case& c = GetParam();
  VisionFixture fx = load(c.name);
  if (!c.finite_diff) GTEST_SKIP() << "a ReLU kink may sit within the step";
  for (const Tensor& t : fx.in)
    if (t.dtype() != DType::F32) GTEST_SKIP() << "finite differences need f32 inputs";
  for (size_t i = 0; i < fx.in.size(); ++i)
    if (fx.grad[i].defined()) fx.in[i].set_requires_grad(true);
  backward(weighted(c.fn(fx.in, fx), fx.r));
  auto loss = [&] {
    NoGradGuard no_grad;
    std::vector<float> o = c.fn(fx.in, fx).to_floats(), r = fx.r.to_floats();
    double s = 0;
    for (size_t j = 0; j < o.size(); ++j) s += double(o[j]) * r[j];
    return s;
  };
  std::mt19937 gen(static_cast<uint32_t>(std::hash<std::string>{}(c.name)));
  for (size_t i = 0; i < fx.in.size(); ++i)
    if (fx.grad[i].defined()) expect_finite_difference_gradient(fx.in[i], static_cast<int>(i), loss, gen, 12);
}

INSTANTIATE_TEST_SUITE_P(Vision, VisionOps, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(VisionOpsErrors, NameTheOpAndShapes) {
  auto expect = [](const std::function<void()>& run, std::vector<std::string> parts) {
    try {
      run();
      ADD_FAILURE() << "no ShapeError";
    } catch (const ShapeError& e) {
      for (auto& s : parts) EXPECT_NE(std::string(e.what()).find(s), std::string::npos) << e.what();
    }
  };
  Tensor x = Tensor::zeros(Shape{1, 4, 4, 3});
  expect([&] { conv2d(x, Tensor::zeros(Shape{2, 3, 3, 2}), Tensor()); }, {"conv2d", "(2, 3, 3, 2)", "(1, 4, 4, 3)"});
  expect([&] { conv2d(Tensor::zeros(Shape{4, 4, 3}), Tensor::zeros(Shape{2, 3, 3, 3}), Tensor()); }, {"conv2d", "(4, 4, 3)"});
  expect([&] { max_pool2d(x, Pool2dParams{.kernel = 5}); }, {"max_pool2d", "(1, 4, 4, 3)"});
  expect([&] { batch_norm(x, Tensor::zeros(Shape{4}), Tensor::zeros(Shape{4}), Tensor(), Tensor(), true, 1e-5f); },
         {"batch_norm", "(4)", "(1, 4, 4, 3)"});
  expect([&] { group_norm(x, Tensor::zeros(Shape{3}), Tensor::zeros(Shape{3}), 2, 1e-5f); },
         {"group_norm", "2 groups"});
}

}  // namespace
}  // namespace bb::test
