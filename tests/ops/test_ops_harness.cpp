// Runs every case of op_cases() (test_ops_cases.cpp) two ways: against its PyTorch fixture
// (outputs, and gradients of loss = sum_k sum(out_k * r_k)), and by central finite
// differences of the same loss on f32 inputs. Then what a fixture cannot cover: dropout's
// counter-based masks, and errors that name the op and the shapes at fault.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "autograd/backward.h"
#include "core/error.h"
#include "core/grad_mode.h"
#include "io/safetensors.h"
#include "finite_difference.h"
#include "op_cases.h"
#include "ops/ops.h"

namespace bb::test {
namespace {

// ------------------------------------------------------------------ fixtures

struct Fixture {
  std::vector<Tensor> in;         // writable copies (the finite differences edit them)
  std::vector<Tensor> r, out;     // per output
  std::vector<Tensor> grad;       // per input; undefined where the input gets none
  Attrs attrs{{}};
};

Fixture load_fixture(const std::string& name) {
  SafetensorsFile f(std::string(BIGBATCH_FIXTURES) + "/ops/" + name + ".safetensors");
  Fixture fx;
  fx.attrs = Attrs(f.metadata());
  for (int i = 0; f.contains(fmt::format("in.{}", i)); ++i) {
    std::string g = fmt::format("grad.{}", i);
    fx.in.push_back(f.get(fmt::format("in.{}", i)).clone(Category::Activations));
    fx.grad.push_back(f.contains(g) ? f.get(g).clone() : Tensor());
  }
  // A single output is stored as `out` and `r`; several as out.0, r.0, out.1, ...
  const int64_t outputs = fx.attrs.i("outputs");
  for (int64_t k = 0; k < outputs; ++k) {
    std::string sfx = f.contains("out") ? std::string() : fmt::format(".{}", k);
    fx.out.push_back(f.get("out" + sfx).clone());
    fx.r.push_back(f.get("r" + sfx).clone());
  }
  return fx;
}

// sum_k sum(out_k * r_k), formed in f32 whatever the outputs' dtype: r is stored in the
// output's dtype, so a bf16 output's gradient (cast back to bf16) is r exactly.
Tensor weighted_loss(const std::vector<Tensor>& outs, const std::vector<Tensor>& rs) {
  Tensor loss;
  for (size_t k = 0; k < outs.size(); ++k) {
    Tensor l = sum_all(mul(cast(outs[k], DType::F32), cast(rs[k], DType::F32)));
    loss = loss.defined() ? add(loss, l) : l;
  }
  return loss;
}

// The same loss accumulated in double on the host: the finite differences subtract two
// nearly equal losses, so an f32 sum's rounding would swamp them.
double weighted_loss_host(const std::vector<Tensor>& outs, const std::vector<Tensor>& rs) {
  double s = 0;
  for (size_t k = 0; k < outs.size(); ++k) {
    std::vector<float> o = outs[k].to_floats(), r = rs[k].to_floats();
    for (size_t j = 0; j < o.size(); ++j) s += double(o[j]) * double(r[j]);
  }
  return s;
}

// Normwise closeness (see Tol): max|got - want| <= rtol * max(max|want|, 1e-6).
::testing::AssertionResult close(const std::vector<float>& got, const std::vector<float>& want,
                                 double rtol) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << got.size() << " values, want " << want.size();
  double scale = 1e-6, err = 0;
  size_t worst = 0;
  for (size_t j = 0; j < want.size(); ++j) {
    scale = std::max(scale, std::fabs(double(want[j])));
    double e = std::fabs(double(got[j]) - double(want[j]));
    if (!(e <= err)) {  // also catches NaN
      err = std::isnan(e) ? INFINITY : e;
      worst = j;
    }
  }
  if (err <= rtol * scale) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "max error " << err << " = " << err / scale << " of max|want| " << scale
         << " (allowed " << rtol << ") at [" << worst << "]: got " << got[worst] << ", want "
         << want[worst];
}

uint32_t name_seed(const std::string& s) {  // FNV-1a: the same picks on every platform
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

// ------------------------------------------------------------------ the table, run

class OpsCase : public ::testing::TestWithParam<OpCase> {};

TEST_P(OpsCase, MatchesTorch) {
  const OpCase& c = GetParam();
  Fixture fx = load_fixture(c.name);
  std::vector<int> fixture_grads;
  for (size_t i = 0; i < fx.grad.size(); ++i)
    if (fx.grad[i].defined()) fixture_grads.push_back(int(i));
  ASSERT_EQ(fixture_grads, c.grads) << "the table and the fixture disagree on which inputs get gradients";
  for (int i : c.grads) fx.in[i].set_requires_grad(true);

  std::vector<Tensor> outs = c.fn(fx.in, fx.attrs);
  ASSERT_EQ(outs.size(), fx.out.size());
  for (size_t k = 0; k < outs.size(); ++k) {
    EXPECT_EQ(outs[k].dtype(), fx.out[k].dtype()) << "out." << k;
    ASSERT_EQ(outs[k].shape(), fx.out[k].shape()) << "out." << k << " is " << outs[k].desc();
    EXPECT_TRUE(close(outs[k].to_floats(), fx.out[k].to_floats(), c.tol.out)) << "out." << k;
  }
  backward(weighted_loss(outs, fx.r));
  for (int i : c.grads) {
    Tensor g = fx.in[i].grad();
    ASSERT_TRUE(g.defined()) << "in." << i << " got no gradient";
    EXPECT_EQ(g.dtype(), DType::F32) << "grad." << i;
    ASSERT_EQ(g.shape(), fx.grad[i].shape()) << "grad." << i << " is " << g.desc();
    EXPECT_TRUE(close(g.to_floats(), fx.grad[i].to_floats(), c.tol.grad)) << "grad." << i;
  }
}

// Central differences on up to 16 random elements of each input that gets a gradient
// (tests/ops/finite_difference.h; relu's and div's inputs are kept away from their kink and
// pole).
TEST_P(OpsCase, FiniteDifferenceGradient) {
  const OpCase& c = GetParam();
  Fixture fx = load_fixture(c.name);
  for (const Tensor& t : fx.in)
    if (is_float(t.dtype()) && t.dtype() != DType::F32)
      GTEST_SKIP() << "finite differences need f32 inputs (a bf16 step is too coarse)";
  for (int i : c.grads) fx.in[i].set_requires_grad(true);
  backward(weighted_loss(c.fn(fx.in, fx.attrs), fx.r));

  auto loss_now = [&] {
    NoGradGuard no_grad;
    return weighted_loss_host(c.fn(fx.in, fx.attrs), fx.r);
  };
  std::mt19937 gen(name_seed(c.name));
  for (int i : c.grads) expect_finite_difference_gradient(fx.in[i], i, loss_now, gen, 16);
}

std::string case_name(const ::testing::TestParamInfo<OpCase>& info) { return info.param.name; }

INSTANTIATE_TEST_SUITE_P(Ops, OpsCase, ::testing::ValuesIn(op_cases()), case_name);

// ------------------------------------------------------------------ dropout

Tensor random_nonzero(const Shape& s, uint32_t seed, DType dtype = DType::F32) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(0.5f, 2.0f);
  std::vector<float> v(s.numel());
  for (float& x : v) x = (gen() & 1 ? 1.0f : -1.0f) * u(gen);
  return Tensor::from_floats(s, v, dtype);
}

std::vector<bool> kept(const Tensor& y) {
  std::vector<bool> m;
  for (float v : y.to_floats()) m.push_back(v != 0.0f);
  return m;
}

constexpr float kP = 0.25f;

TEST(OpsDropout, SameKeySameMaskScaledByKeepProbability) {
  Tensor x = random_nonzero(Shape{64, 64}, 1);
  const RngKey key{7, 3};
  Tensor y1 = dropout(x, kP, key), y2 = dropout(x, kP, key);
  EXPECT_EQ(y1.to_floats(), y2.to_floats());
  std::vector<float> xv = x.to_floats(), yv = y1.to_floats();
  int64_t dropped = 0;
  for (size_t j = 0; j < xv.size(); ++j) {
    if (yv[j] == 0.0f) ++dropped;
    else EXPECT_NEAR(yv[j], xv[j] / (1 - kP), 1e-6 * std::fabs(xv[j])) << j;
  }
  // 4096 draws: the dropped fraction's standard deviation is ~0.007.
  EXPECT_NEAR(double(dropped) / double(xv.size()), kP, 0.03);
}

TEST(OpsDropout, GradientIsMaskOverKeepProbability) {
  Tensor x = random_nonzero(Shape{32, 16}, 2);
  Tensor r = random_nonzero(Shape{32, 16}, 3);
  x.set_requires_grad(true);
  const RngKey key{11, 5};
  Tensor y = dropout(x, kP, key);
  backward(sum_all(mul(y, r)));
  std::vector<bool> m = kept(y);
  std::vector<float> g = x.grad().to_floats(), rv = r.to_floats();
  for (size_t j = 0; j < g.size(); ++j)
    EXPECT_NEAR(g[j], m[j] ? rv[j] / (1 - kP) : 0.0f, 1e-6) << j;
}

TEST(OpsDropout, OtherOffsetOrSeedDrawsOtherMask) {
  Tensor x = random_nonzero(Shape{64, 64}, 4);
  std::vector<bool> base = kept(dropout(x, kP, RngKey{7, 3}));
  EXPECT_NE(base, kept(dropout(x, kP, RngKey{7, 4})));
  EXPECT_NE(base, kept(dropout(x, kP, RngKey{8, 3})));
}

// Element i's mask depends only on (seed, offset, i): a bf16 activation drops the same
// elements as an f32 one, so precision changes do not change what training sees.
TEST(OpsDropout, MaskDoesNotDependOnDtype) {
  Tensor x = random_nonzero(Shape{16, 16}, 5);
  EXPECT_EQ(kept(dropout(x, kP, RngKey{9, 1})), kept(dropout(cast(x, DType::BF16), kP, RngKey{9, 1})));
}

TEST(OpsDropout, ZeroIsIdentityAndBadPNamesTheOp) {
  Tensor x = random_nonzero(Shape{4}, 6);
  EXPECT_TRUE(dropout(x, 0.0f, RngKey{}).same(x));
  try {
    dropout(x, 1.0f, RngKey{});
    ADD_FAILURE() << "dropout with p = 1 did not throw";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("dropout"), std::string::npos) << e.what();
  }
}

// ------------------------------------------------------------------ errors

struct ErrorCase {
  std::string name;
  std::function<void()> run;
  std::vector<std::string> must_name;  // substrings of what()
};

Tensor z(std::initializer_list<int64_t> dims, DType dt = DType::F32) { return Tensor::zeros(Shape(dims), dt); }
Tensor ids(std::initializer_list<int64_t> dims) {
  Shape s(dims);
  return Tensor::from_ints(s, std::vector<int64_t>(s.numel(), 0));
}

std::vector<ErrorCase> error_cases() {
  const Tensor none;
  return {
      {"matmul_inner", [] { matmul(z({3, 4}), z({5, 6})); }, {"matmul", "(3, 4)", "(5, 6)"}},
      {"matmul_batch", [] { matmul(z({2, 3, 4}), z({3, 4, 5})); }, {"matmul", "(2, 3, 4)", "(3, 4, 5)"}},
      {"matmul_dtype", [] { matmul(z({3, 4}), z({4, 5}, DType::BF16)); }, {"matmul", "f32", "bf16"}},
      {"matmul_1d", [] { matmul(z({4}), z({4, 5})); }, {"matmul", "(4)", "(4, 5)"}},
      {"linear_bias", [=] { linear(z({2, 4}), z({5, 4}), z({3})); }, {"linear", "(3)", "5"}},
      {"linear_weight_3d", [=] { linear(z({2, 4}), z({1, 5, 4}), none); }, {"linear", "(1, 5, 4)"}},
      {"add_not_suffix", [] { add(z({2, 3}), z({2})); }, {"add", "(2)", "(2, 3)"}},
      {"div_dtype", [] { div(z({2, 3}), z({3}, DType::BF16)); }, {"div", "f32", "bf16"}},
      {"softmax_ints", [] { softmax(ids({3})); }, {"softmax", "i64 (3)"}},
      {"sum_axis", [] { sum(z({2, 3}), 2); }, {"sum", "(2, 3)"}},
      {"reshape_count", [] { reshape(z({2, 3}), {4, 2}); }, {"reshape", "(2, 3)", "(4, 2)"}},
      {"permute_axes", [] { permute(z({2, 3}), {0}); }, {"permute", "(2, 3)"}},
      {"concat_fit", [] { concat({z({2, 3}), z({3, 3})}, 1); }, {"concat", "(2, 3)", "(3, 3)"}},
      {"split_sizes", [] { split(z({2, 5}), {2, 2}, 1); }, {"split", "(2, 5)"}},
      {"slice_range", [] { slice(z({2, 5}), 1, 3, 3); }, {"slice", "(2, 5)"}},
      {"embedding_float_ids", [] { embedding(z({7, 4}), z({3})); }, {"embedding", "f32 (3)"}},
      {"layer_norm_weight", [=] { layer_norm(z({2, 8}), z({4}), none, 1e-5f); }, {"layer_norm", "(4)", "(2, 8)"}},
      {"rms_norm_weight_dtype", [] { rms_norm(z({2, 8}), z({8}, DType::BF16), 1e-6f); }, {"rms_norm", "bf16 (8)"}},
      {"attention_heads", [] { attention(z({1, 4, 3, 8}), z({1, 4, 2, 8}), z({1, 4, 2, 8})); },
       {"attention", "(1, 4, 3, 8)", "(1, 4, 2, 8)"}},
      {"rope_odd_dim", [] { rope(z({1, 2, 1, 7}), 1e4f); }, {"rope", "(1, 2, 1, 7)"}},
      {"cross_entropy_rows", [] { cross_entropy(z({4, 7}), ids({3})); }, {"cross_entropy", "3 targets", "4 rows"}},
      {"linear_cross_entropy_weight", [] { linear_cross_entropy(z({4, 8}), z({11, 6}), ids({4})); },
       {"linear_cross_entropy", "(11, 6)", "(4, 8)"}},
  };
}

void PrintTo(const ErrorCase& e, std::ostream* os) { *os << e.name; }

class OpsError : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(OpsError, NamesTheOpAndShapes) {
  const ErrorCase& e = GetParam();
  try {
    e.run();
    FAIL() << "no ShapeError";
  } catch (const ShapeError& err) {
    for (const std::string& s : e.must_name)
      EXPECT_NE(std::string(err.what()).find(s), std::string::npos) << "'" << s << "' not in: " << err.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, OpsError, ::testing::ValuesIn(error_cases()),
                         [](const ::testing::TestParamInfo<ErrorCase>& info) { return info.param.name; });

}  // namespace
}  // namespace bb::test
