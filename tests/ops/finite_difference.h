// The finite-difference check shared by the op and vision-op harnesses: central differences
// (L(x + h) - L(x - h)) / 2h, h = 1e-2, on up to `picks` random elements of an input whose
// autograd gradient is already in input.grad(). Passes when
// |fd - autograd| <= 1e-2 * max(|autograd|, 0.1 * max|autograd over that input|) + 1e-5:
// truncation error is O(h^2) ~ 1e-4 relative on O(1) inputs, and f32 forward noise divided
// by 2h is ~1e-5.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>
#include <vector>

#include "core/tensor.h"

namespace bb::test {

inline void expect_finite_difference_gradient(Tensor& input, int index, const std::function<double()>& loss,
                                              std::mt19937& gen, int picks) {
  constexpr float kStep = 1e-2f;
  constexpr double kRtol = 1e-2, kFloor = 0.1, kAtol = 1e-5;
  std::vector<float> ag = input.grad().to_floats();
  double gmax = 0;
  for (float g : ag) gmax = std::max(gmax, std::fabs(double(g)));
  std::vector<int64_t> idx(ag.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::shuffle(idx.begin(), idx.end(), gen);
  idx.resize(std::min<size_t>(idx.size(), picks));
  float* p = input.data<float>();
  for (int64_t j : idx) {
    const float x0 = p[j], xp = x0 + kStep, xm = x0 - kStep;
    p[j] = xp;
    const double lp = loss();
    p[j] = xm;
    const double lm = loss();
    p[j] = x0;
    const double fd = (lp - lm) / (double(xp) - double(xm));  // the step f32 really took
    const double tol = kRtol * std::max(std::fabs(double(ag[j])), kFloor * gmax) + kAtol;
    EXPECT_NEAR(fd, ag[j], tol) << "d loss / d in." << index << "[" << j << "]";
  }
}

}  // namespace bb::test
