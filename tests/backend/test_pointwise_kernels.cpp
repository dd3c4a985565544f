// CPU kernels for norms, activations, softmax, cross-entropy, dropout and embedding against
// naive double-precision references written here. f32 results are held to ~1e-5 relative;
// bf16 outputs to 1e-2 relative (one bf16 ulp is 2^-8 ~ 3.9e-3, plus the input rounding).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/counter_rng.h"
#include "backend/cpu/cpu_backend.h"
#include "core/error.h"

namespace bb {
namespace {

using Vec = std::vector<float>;
using DVec = std::vector<double>;

Vec random_vec(size_t n, uint32_t seed, float lo = -2.0f, float hi = 2.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  Vec v(n);
  for (float& x : v) x = u(gen);
  return v;
}

// The values a tensor of `dtype` actually holds after storing v.
Vec rounded(const Vec& v, DType dtype) {
  return Tensor::from_floats(Shape{int64_t(v.size())}, v, dtype).to_floats();
}

// |got - want| <= rtol |want| + atol for every element; reports the first few misses.
void expect_close(const Vec& got, const DVec& want, double rtol, double atol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int misses = 0;
  for (size_t i = 0; i < got.size() && misses < 5; ++i) {
    double err = std::fabs(double(got[i]) - want[i]);
    if (!(err <= rtol * std::fabs(want[i]) + atol)) {
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << want[i];
      ++misses;
    }
  }
}

double max_abs(const DVec& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

// ---------------------------------------------------------------- norms

struct NormRef {
  DVec y, mean, rstd, dx, dgamma, dbeta;
};

// LayerNorm (rms = false) or RMSNorm (rms = true) forward and analytic backward in double.
NormRef norm_ref(const Vec& x, const Vec& g, const Vec* b, const Vec& dy, int64_t rows,
                 int64_t c, double eps, bool rms) {
  NormRef r{DVec(x.size()), DVec(rows), DVec(rows), DVec(x.size()), DVec(c, 0.0), DVec(c, 0.0)};
  for (int64_t i = 0; i < rows; ++i) {
    const float* xr = &x[i * c];
    double mu = 0, var = 0;
    if (!rms) {
      for (int64_t j = 0; j < c; ++j) mu += xr[j];
      mu /= c;
    }
    for (int64_t j = 0; j < c; ++j) var += (xr[j] - mu) * (xr[j] - mu);
    double rs = 1.0 / std::sqrt(var / c + eps);
    r.mean[i] = mu;
    r.rstd[i] = rs;
    double sg = 0, sgx = 0;
    for (int64_t j = 0; j < c; ++j) {
      double xh = (xr[j] - mu) * rs, d = dy[i * c + j];
      r.y[i * c + j] = xh * g[j] + (b ? (*b)[j] : 0.0);
      sg += d * g[j];
      sgx += d * g[j] * xh;
      r.dgamma[j] += d * xh;
      r.dbeta[j] += d;
    }
    for (int64_t j = 0; j < c; ++j) {
      double xh = (xr[j] - mu) * rs, gj = dy[i * c + j] * g[j];
      r.dx[i * c + j] = rms ? rs * (gj - xh * sgx / c) : rs * (gj - sg / c - xh * sgx / c);
    }
  }
  return r;
}

TEST(NormKernelReference, AnalyticBackwardMatchesFiniteDifferences) {
  // Validates the reference itself: d/dx and d/dgamma of sum(dy * y) by central differences.
  const int64_t rows = 3, c = 7;
  Vec x = random_vec(rows * c, 1), g = random_vec(c, 2), b = random_vec(c, 3),
      dy = random_vec(rows * c, 4);
  for (bool rms : {false, true}) {
    NormRef ref = norm_ref(x, g, &b, dy, rows, c, 1e-5, rms);
    auto loss = [&](const Vec& xx, const Vec& gg) {
      NormRef f = norm_ref(xx, gg, &b, dy, rows, c, 1e-5, rms);
      double s = 0;
      for (size_t i = 0; i < xx.size(); ++i) s += dy[i] * f.y[i];
      return s;
    };
    const float h = 1.0f / 1024;  // exact in float, so x +- h is exact too
    for (size_t i = 0; i < x.size(); ++i) {
      Vec xp = x, xm = x;
      xp[i] += h;
      xm[i] -= h;
      EXPECT_NEAR((loss(xp, g) - loss(xm, g)) / (2 * h), ref.dx[i], 1e-4) << "dx " << i;
    }
    for (int64_t j = 0; j < c; ++j) {
      Vec gp = g, gm = g;
      gp[j] += h;
      gm[j] -= h;
      EXPECT_NEAR((loss(x, gp) - loss(x, gm)) / (2 * h), ref.dgamma[j], 1e-6) << "dg " << j;
    }
  }
}

class NormKernel : public ::testing::TestWithParam<std::tuple<DType, bool>> {};

TEST_P(NormKernel, ForwardAndBackwardMatchReference) {
  const auto [dtype, rms] = GetParam();
  const int64_t rows = 67, c = 301;  // odd sizes exercise the vector remainders
  const float eps = 1e-5f;
  CpuBackend be;
  Vec x = rounded(random_vec(rows * c, 10, -3.0f, 5.0f), dtype);
  Vec dy = rounded(random_vec(rows * c, 11), dtype);
  Vec g = random_vec(c, 12, 0.5f, 1.5f), b = random_vec(c, 13);
  NormRef ref = norm_ref(x, g, rms ? nullptr : &b, dy, rows, c, eps, rms);
  const double rt = dtype == DType::F32 ? 2e-5 : 1e-2;
  const double at = dtype == DType::F32 ? 1e-5 : 2e-2;

  Shape s{rows, c};
  Tensor tx = Tensor::from_floats(s, x, dtype), tdy = Tensor::from_floats(s, dy, dtype);
  Tensor tg = Tensor::from_floats(Shape{c}, g), tb = Tensor::from_floats(Shape{c}, b);
  Tensor ty = Tensor::empty(s, dtype), tdx = Tensor::empty(s, dtype);
  Tensor tmean = Tensor::empty(Shape{rows}), trstd = Tensor::empty(Shape{rows});
  Tensor tdg = Tensor::full(Shape{c}, 7.0f), tdb = Tensor::full(Shape{c}, 7.0f);  // overwritten
  if (rms) {
    be.rmsnorm(tx, tg, eps, ty, trstd);
    be.rmsnorm_backward(tdy, tx, tg, trstd, tdx, tdg);
  } else {
    be.layernorm(tx, tg, tb, eps, ty, tmean, trstd);
    expect_close(tmean.to_floats(), ref.mean, 1e-5, 1e-6, "mean");
    be.layernorm_backward(tdy, tx, tg, tmean, trstd, tdx, tdg, tdb);
    expect_close(tdb.to_floats(), ref.dbeta, 2e-5, 1e-5 * max_abs(ref.dbeta), "dbeta");
  }
  expect_close(trstd.to_floats(), ref.rstd, 2e-5, 0, "rstd");
  expect_close(ty.to_floats(), ref.y, rt, at, "y");
  expect_close(tdx.to_floats(), ref.dx, rt, at * max_abs(ref.dx), "dx");
  expect_close(tdg.to_floats(), ref.dgamma, 2e-5, 1e-5 * max_abs(ref.dgamma), "dgamma");

  // The parameter gradient is bit-identical when run again.
  Tensor tdg2 = Tensor::empty(Shape{c}), tdb2 = Tensor::empty(Shape{c});
  if (rms) be.rmsnorm_backward(tdy, tx, tg, trstd, tdx, tdg2);
  else be.layernorm_backward(tdy, tx, tg, tmean, trstd, tdx, tdg2, tdb2);
  EXPECT_EQ(0, std::memcmp(tdg.raw(), tdg2.raw(), c * 4));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, NormKernel,
                         ::testing::Combine(::testing::Values(DType::F32, DType::BF16),
                                            ::testing::Bool()));

TEST(NormKernelEdges, LayerNormWithoutBetaAndZeroRows) {
  CpuBackend be;
  const int64_t c = 40;
  Vec x = random_vec(2 * c, 20), g = random_vec(c, 21), dy = random_vec(2 * c, 22);
  NormRef ref = norm_ref(x, g, nullptr, dy, 2, c, 1e-6, false);
  Tensor ty = Tensor::empty(Shape{2, c}), tm = Tensor::empty(Shape{2}),
         tr = Tensor::empty(Shape{2});
  be.layernorm(Tensor::from_floats(Shape{2, c}, x), Tensor::from_floats(Shape{c}, g), Tensor(),
               1e-6f, ty, tm, tr);
  expect_close(ty.to_floats(), ref.y, 2e-5, 1e-6, "y");
  // No rows: dgamma and dbeta are still written (with zeros).
  Tensor dg = Tensor::full(Shape{c}, 3.0f), db = Tensor::full(Shape{c}, 3.0f);
  Tensor empty_x = Tensor::empty(Shape{0, c});
  be.layernorm_backward(empty_x, empty_x, Tensor::from_floats(Shape{c}, g), Tensor::empty(Shape{0}),
                        Tensor::empty(Shape{0}), empty_x, dg, db);
  for (float v : dg.to_floats()) EXPECT_EQ(v, 0.0f);
  for (float v : db.to_floats()) EXPECT_EQ(v, 0.0f);
}

// ---------------------------------------------------------------- activations

const double kSqrt2Pi = std::sqrt(2.0 / M_PI);

double act_ref(Activation f, double x) {
  switch (f) {
    case Activation::GeluTanh:  // 0.5 x (1 + tanh u) = x sigmoid(2u), without cancellation
      return x / (1 + std::exp(-2 * kSqrt2Pi * (x + 0.044715 * x * x * x)));
    case Activation::GeluExact: return 0.5 * x * std::erfc(-x / std::sqrt(2.0));
    case Activation::Silu: return x / (1 + std::exp(-x));
    case Activation::Relu: return x > 0 ? x : 0;
    case Activation::Relu6: return std::min(std::max(x, 0.0), 6.0);
    case Activation::HardSwish: return x * std::min(std::max(x + 3, 0.0), 6.0) / 6;
  }
  return 0;
}

double act_grad_ref(Activation f, double x) {
  switch (f) {
    case Activation::GeluTanh: {
      double t = std::tanh(kSqrt2Pi * (x + 0.044715 * x * x * x));
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * kSqrt2Pi * (1 + 3 * 0.044715 * x * x);
    }
    case Activation::GeluExact:
      return 0.5 * std::erfc(-x / std::sqrt(2.0)) + x * std::exp(-x * x / 2) / std::sqrt(2 * M_PI);
    case Activation::Silu: {
      double s = 1 / (1 + std::exp(-x));
      return s * (1 + x * (1 - s));
    }
    case Activation::Relu: return x > 0 ? 1 : 0;
    case Activation::Relu6: return x > 0 && x < 6 ? 1 : 0;
    case Activation::HardSwish: return x < -3 ? 0 : (x <= 3 ? (2 * x + 3) / 6 : 1);
  }
  return 0;
}

const Activation kAllActivations[] = {Activation::GeluTanh, Activation::GeluExact,
                                      Activation::Silu,     Activation::Relu,
                                      Activation::Relu6,    Activation::HardSwish};

TEST(ActivationKernelReference, SmoothGradientsMatchFiniteDifferences) {
  for (Activation f : {Activation::GeluTanh, Activation::GeluExact, Activation::Silu})
    for (double x = -6; x <= 6; x += 0.37) {
      double fd = (act_ref(f, x + 1e-6) - act_ref(f, x - 1e-6)) / 2e-6;
      EXPECT_NEAR(fd, act_grad_ref(f, x), 1e-8) << int(f) << " at " << x;
    }
}

class ActivationKernel : public ::testing::TestWithParam<std::tuple<Activation, DType>> {};

TEST_P(ActivationKernel, ForwardAndBackwardMatchReference) {
  const auto [f, dtype] = GetParam();
  CpuBackend be;
  Vec x;  // a fine grid over [-10, 10], the kinks, and enough elements to go parallel
  for (float v = -10.0f; v <= 10.0f; v += 0.0137f) x.push_back(v);
  for (float v : {-3.0f, 3.0f, 0.0f, 6.0f, -3.0001f, 3.0001f, 1e-4f, -1e-4f}) x.push_back(v);
  Vec more = random_vec(70000, 30, -8.0f, 8.0f);
  x.insert(x.end(), more.begin(), more.end());
  x = rounded(x, dtype);
  Vec dy = rounded(random_vec(x.size(), 31), dtype);
  const int64_t n = x.size();
  DVec y_ref(n), dx_ref(n);
  for (int64_t i = 0; i < n; ++i) {
    y_ref[i] = act_ref(f, x[i]);
    dx_ref[i] = act_grad_ref(f, x[i]) * dy[i];
  }
  Tensor tx = Tensor::from_floats(Shape{n}, x, dtype);
  Tensor tdy = Tensor::from_floats(Shape{n}, dy, dtype);
  Tensor ty = Tensor::empty(Shape{n}, dtype), tdx = Tensor::empty(Shape{n}, dtype);
  be.activation(f, tx, ty);
  be.activation_backward(f, tx, tdy, tdx);
  if (dtype == DType::F32) {
    expect_close(ty.to_floats(), y_ref, 2e-5, 1e-12, "y");
    expect_close(tdx.to_floats(), dx_ref, 2e-5, 1e-6, "dx");
  } else {
    expect_close(ty.to_floats(), y_ref, 1e-2, 1e-12, "y");
    expect_close(tdx.to_floats(), dx_ref, 1e-2, 1e-5, "dx");
  }
}

INSTANTIATE_TEST_SUITE_P(AllKinds, ActivationKernel,
                         ::testing::Combine(::testing::ValuesIn(kAllActivations),
                                            ::testing::Values(DType::F32, DType::BF16)));

TEST(ActivationKernelKinks, GradientsAtTheKinksFollowPyTorch) {
  CpuBackend be;
  auto grad = [&](Activation f, float x) {
    Tensor dx = Tensor::empty(Shape{1});
    be.activation_backward(f, Tensor::from_floats(Shape{1}, {x}),
                           Tensor::from_floats(Shape{1}, {1.0f}), dx);
    return dx.item();
  };
  EXPECT_EQ(grad(Activation::Relu, 0.0f), 0.0f);
  EXPECT_EQ(grad(Activation::Relu6, 0.0f), 0.0f);
  EXPECT_EQ(grad(Activation::Relu6, 6.0f), 0.0f);
  EXPECT_EQ(grad(Activation::Relu6, 5.9f), 1.0f);
  EXPECT_EQ(grad(Activation::HardSwish, -3.0f), -0.5f);
  EXPECT_EQ(grad(Activation::HardSwish, 3.0f), 1.5f);
  EXPECT_EQ(grad(Activation::HardSwish, -3.01f), 0.0f);
  EXPECT_EQ(grad(Activation::HardSwish, 3.01f), 1.0f);
}

// ---------------------------------------------------------------- softmax

TEST(SoftmaxKernel, ForwardAndBackwardMatchReference) {
  CpuBackend be;
  for (DType dtype : {DType::F32, DType::BF16}) {
    const int64_t rows = 33, c = 517;
    Vec x = random_vec(rows * c, 40, -20.0f, 20.0f);
    for (int64_t j = 0; j < c; ++j) x[j] += 1000.0f;  // row 0 needs the max subtraction
    x = rounded(x, dtype);
    Tensor ty = Tensor::empty(Shape{rows, c}, dtype);
    be.softmax(Tensor::from_floats(Shape{rows, c}, x, dtype), ty);
    DVec y_ref(x.size());
    for (int64_t r = 0; r < rows; ++r) {
      double m = -INFINITY, s = 0;
      for (int64_t j = 0; j < c; ++j) m = std::max(m, double(x[r * c + j]));
      for (int64_t j = 0; j < c; ++j) s += std::exp(x[r * c + j] - m);
      for (int64_t j = 0; j < c; ++j) y_ref[r * c + j] = std::exp(x[r * c + j] - m) / s;
    }
    const bool f32 = dtype == DType::F32;
    expect_close(ty.to_floats(), y_ref, f32 ? 2e-5 : 1e-2, 1e-30, "softmax y");

    Vec y = ty.to_floats(), dy = rounded(random_vec(x.size(), 41), dtype);
    DVec dx_ref(x.size());
    for (int64_t r = 0; r < rows; ++r) {
      double dot = 0;
      for (int64_t j = 0; j < c; ++j) dot += double(dy[r * c + j]) * y[r * c + j];
      for (int64_t j = 0; j < c; ++j) dx_ref[r * c + j] = y[r * c + j] * (dy[r * c + j] - dot);
    }
    Tensor tdx = Tensor::empty(Shape{rows, c}, dtype);
    be.softmax_backward(ty, Tensor::from_floats(Shape{rows, c}, dy, dtype), tdx);
    expect_close(tdx.to_floats(), dx_ref, f32 ? 2e-5 : 1e-2, 1e-6, "softmax dx");
  }
}

// ---------------------------------------------------------------- cross-entropy

struct CeRef {
  double loss = 0;
  int counted = 0;
  DVec dlogits;
};

CeRef ce_ref(const Vec& x, const std::vector<int64_t>& t, int64_t v, int64_t ignore, double scale) {
  CeRef r;
  r.dlogits.assign(x.size(), 0.0);
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == ignore) continue;
    const float* xr = &x[i * v];
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < v; ++j) m = std::max(m, double(xr[j]));
    for (int64_t j = 0; j < v; ++j) s += std::exp(xr[j] - m);
    r.loss += m + std::log(s) - xr[t[i]];
    ++r.counted;
    for (int64_t j = 0; j < v; ++j)
      r.dlogits[i * v + j] = (std::exp(xr[j] - m) / s - (j == t[i] ? 1 : 0)) * scale;
  }
  return r;
}

TEST(CrossEntropyKernel, LossCountAndGradientMatchReference) {
  CpuBackend be;
  const int64_t rows = 13, v = 5003, ignore = -100;
  std::vector<int64_t> t(rows);
  for (int64_t i = 0; i < rows; ++i) t[i] = (i * 977) % v;
  t[2] = t[7] = ignore;
  for (DType dtype : {DType::F32, DType::BF16}) {
    Vec x = rounded(random_vec(rows * v, 50, -8.0f, 8.0f), dtype);
    for (int64_t j = 0; j < v; ++j) x[3 * v + j] += 500.0f;  // needs the max subtraction
    for (int64_t j = 0; j < 4500; ++j) x[5 * v + j] = -INFINITY;  // masked: whole -inf chunks
    x = rounded(x, dtype);
    const float scale = 0.37f;
    CeRef ref = ce_ref(x, t, v, ignore, scale);
    Tensor tx = Tensor::from_floats(Shape{rows, v}, x, dtype);
    Tensor tt = Tensor::from_ints(Shape{rows}, t);
    Tensor loss = Tensor::empty(Shape{1}), counted = Tensor::empty(Shape{1});
    Tensor dl = Tensor::full(Shape{rows, v}, 9.0f, dtype);
    be.cross_entropy(tx, tt, ignore, loss, counted, dl, scale);
    EXPECT_NEAR(loss.item(), ref.loss, 1e-5 * ref.loss);
    EXPECT_EQ(counted.item(), float(ref.counted));
    const bool f32 = dtype == DType::F32;
    expect_close(dl.to_floats(), ref.dlogits, f32 ? 2e-5 : 1e-2, 1e-9, "dlogits");

    // Without dlogits: the same loss, bit for bit, and the same with one thread.
    Tensor loss2 = Tensor::empty(Shape{1});
    be.cross_entropy(tx, tt, ignore, loss2, counted, Tensor(), scale);
    EXPECT_EQ(loss.item(), loss2.item());
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    be.cross_entropy(tx, tt, ignore, loss2, counted, Tensor(), scale);
    omp_set_num_threads(threads);
    EXPECT_EQ(loss.item(), loss2.item());
  }
}

// f32 logits may give a 16-bit gradient directly (the head of a bf16 model): it is the f32
// gradient rounded once, bit for bit, and a 16-bit gradient of 16-bit logits' other dtype is
// refused.
TEST(CrossEntropyKernel, F32LogitsGiveA16BitGradientRoundedOnce) {
  CpuBackend be;
  const int64_t rows = 5, v = 5000;  // more than one of the kernel's 2048-wide chunks
  Tensor x = Tensor::from_floats(Shape{rows, v}, random_vec(rows * v, 61));
  Tensor t = Tensor::from_ints(Shape{rows}, {3, -100, 4999, 0, 2048});
  Tensor loss = Tensor::empty(Shape{1}), counted = Tensor::empty(Shape{1});
  Tensor d32 = Tensor::empty(Shape{rows, v});
  be.cross_entropy(x, t, -100, loss, counted, d32, 0.375f);
  for (DType low : {DType::BF16, DType::F16}) {
    Tensor d16 = Tensor::full(Shape{rows, v}, 9.0f, low), want = Tensor::empty(Shape{rows, v}, low);
    Tensor loss16 = Tensor::empty(Shape{1});
    be.cross_entropy(x, t, -100, loss16, counted, d16, 0.375f);
    be.cast(d32, want);
    EXPECT_EQ(loss16.item(), loss.item());
    EXPECT_EQ(d16.to_floats(), want.to_floats()) << dtype_name(low);
  }
  Tensor xb = Tensor::empty(Shape{rows, v}, DType::BF16);
  be.cast(x, xb);
  Tensor wrong = Tensor::empty(Shape{rows, v}, DType::F16);
  EXPECT_THROW(be.cross_entropy(xb, t, -100, loss, counted, wrong, 1.0f), ShapeError);
}

TEST(CrossEntropyKernel, TargetOutOfRangeThrowsBeforeWriting) {
  CpuBackend be;
  const int64_t rows = 4, v = 10;
  Tensor x = Tensor::from_floats(Shape{rows, v}, random_vec(rows * v, 60));
  Tensor loss = Tensor::full(Shape{1}, 5.0f), counted = Tensor::full(Shape{1}, 5.0f);
  Tensor dl = Tensor::full(Shape{rows, v}, 9.0f);
  for (int64_t bad : {int64_t(10), int64_t(-1), int64_t(12345)}) {
    Tensor t = Tensor::from_ints(Shape{rows}, {1, -100, 3, bad});
    try {
      be.cross_entropy(x, t, -100, loss, counted, dl, 1.0f);
      ADD_FAILURE() << "target " << bad << " did not throw";
    } catch (const ShapeError& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find("row 3"), std::string::npos) << msg;
      EXPECT_NE(msg.find(std::to_string(bad)), std::string::npos) << msg;
    }
  }
  EXPECT_EQ(loss.item(), 5.0f);
  for (float f : dl.to_floats()) ASSERT_EQ(f, 9.0f);
}

// ---------------------------------------------------------------- dropout

TEST(DropoutKernel, MaskIsAPureFunctionOfTheKey) {
  CpuBackend be;
  const int64_t n = 1000000;
  const float p = 0.1f;
  Tensor x = Tensor::full(Shape{n}, 1.0f);
  auto run = [&](RngKey key) {
    Tensor y = Tensor::empty(Shape{n});
    be.dropout(x, p, key, y);
    return y.to_floats();
  };
  Vec a = run({42, 7}), b = run({42, 7}), c = run({42, 8}), d = run({43, 7});
  EXPECT_EQ(a, b);
  int64_t kept = 0, same_c = 0, same_d = 0;
  double sum = 0;
  const float kept_value = 1.0f / (1.0f - p);
  const uint32_t threshold = uint32_t(std::llround(double(p) * 4294967296.0));
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_TRUE(a[i] == 0.0f || a[i] == kept_value) << a[i];
    // The kernel's mask is counter_random's stream.
    ASSERT_EQ(a[i] != 0.0f, cpu::counter_random(42, 7, i) >= threshold) << i;
    kept += a[i] != 0.0f;
    same_c += (a[i] != 0.0f) == (c[i] != 0.0f);
    same_d += (a[i] != 0.0f) == (d[i] != 0.0f);
    sum += a[i];
  }
  EXPECT_NEAR(double(kept) / n, 1.0 - p, 0.01 * (1.0 - p));
  EXPECT_NEAR(sum / n, 1.0, 0.01);
  // Independent masks agree where both keep or both drop: 0.9^2 + 0.1^2 = 0.82.
  EXPECT_NEAR(double(same_c) / n, 0.82, 0.01);
  EXPECT_NEAR(double(same_d) / n, 0.82, 0.01);

  // One thread draws the same mask.
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  Vec e = run({42, 7});
  omp_set_num_threads(threads);
  EXPECT_EQ(a, e);
}

TEST(DropoutKernel, HalfKeepsHalfAndEdgesCopyOrZero) {
  CpuBackend be;
  const int64_t n = 1000000;
  Vec xv = random_vec(n, 70);
  for (DType dtype : {DType::F32, DType::BF16}) {
    Tensor x = Tensor::from_floats(Shape{n}, xv, dtype), y = Tensor::empty(Shape{n}, dtype);
    be.dropout(x, 0.5f, {1, 2}, y);
    Vec xs = x.to_floats(), ys = y.to_floats();
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (ys[i] != 0.0f) {
        ++kept;
        ASSERT_EQ(ys[i], xs[i] * 2.0f);
      }
    }
    EXPECT_NEAR(double(kept) / n, 0.5, 0.005);
    be.dropout(x, 0.0f, {1, 2}, y);
    EXPECT_EQ(0, std::memcmp(x.raw(), y.raw(), x.nbytes()));
    be.dropout(x, 1.0f, {1, 2}, y);
    for (float f : y.to_floats()) ASSERT_EQ(f, 0.0f);
  }
}

// ---------------------------------------------------------------- embedding

TEST(EmbeddingKernel, GatherAndScatterAddMatchReference) {
  CpuBackend be;
  const int64_t vocab = 50, d = 70, n = 300;
  Vec table = random_vec(vocab * d, 80);
  std::vector<int64_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = (i * 7 + i / 3) % vocab;  // repeats
  for (DType dtype : {DType::F32, DType::BF16}) {
    for (DType id_dtype : {DType::I64, DType::I32}) {
      Tensor tt = Tensor::from_floats(Shape{vocab, d}, table, dtype);
      Tensor out = Tensor::empty(Shape{n, d}, dtype);
      Tensor tids = Tensor::from_ints(Shape{n}, ids, id_dtype);
      be.embedding(tt, tids, out);
      Vec ts = tt.to_floats(), os = out.to_floats();
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < d; ++j) ASSERT_EQ(os[i * d + j], ts[ids[i] * d + j]);

      // Backward accumulates onto what the table gradient holds, rows added in id order.
      Vec g = rounded(random_vec(n * d, 81), dtype), start = random_vec(vocab * d, 82);
      Tensor grad = Tensor::from_floats(Shape{vocab, d}, start);
      be.embedding_backward(Tensor::from_floats(Shape{n, d}, g, dtype), tids, grad);
      Vec want = start;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < d; ++j) want[ids[i] * d + j] += g[i * d + j];
      EXPECT_EQ(grad.to_floats(), want);
    }
  }
}

TEST(EmbeddingKernel, IdOutOfRangeThrowsNamingPositionAndId) {
  CpuBackend be;
  Tensor table = Tensor::from_floats(Shape{5, 3}, random_vec(15, 90));
  Tensor out = Tensor::full(Shape{3, 3}, 4.0f);
  Tensor grad = Tensor::full(Shape{5, 3}, 4.0f);
  for (int64_t bad : {int64_t(5), int64_t(-2)}) {
    Tensor ids = Tensor::from_ints(Shape{3}, {0, 4, bad});
    for (int pass = 0; pass < 2; ++pass) {
      try {
        if (pass == 0) be.embedding(table, ids, out);
        else be.embedding_backward(out, ids, grad);
        ADD_FAILURE() << "id " << bad << " did not throw";
      } catch (const ShapeError& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("position 2"), std::string::npos) << msg;
        EXPECT_NE(msg.find(std::to_string(bad)), std::string::npos) << msg;
      }
    }
  }
  for (float f : out.to_floats()) ASSERT_EQ(f, 4.0f);
  for (float f : grad.to_floats()) ASSERT_EQ(f, 4.0f);
}

}  // namespace
}  // namespace bb
