// Vectorisable scalar math shared by the CPU kernels (the compiler turns loops over these
// into AVX-512 code; std::exp would not vectorise without -ffast-math).
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace bb::cpu {

// Cephes' expf: ln2 split in two for an exact reduction, and the degree-6 polynomial for e^r
// (highest power first). Kernels that write the same exp in intrinsics take them from here.
namespace exp_coef {
inline constexpr float kLog2e = 1.44269504088896341f;
inline constexpr float kLn2Hi = 0.693359375f;
inline constexpr float kLn2Lo = -2.12194440e-4f;
inline constexpr float kPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                   4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
}  // namespace exp_coef

// exp(x) in f32, within 2 ulp for normal results: x = n ln2 + r with |r| <= ln2/2, Cephes'
// degree-6 polynomial for e^r, 2^n built in the exponent bits. Results below 2^-126 flush to
// 0 and x > 88 gives inf (true overflow starts at 88.72; nothing here needs that last 0.7).
inline float fast_exp(float x) {
  // No clamp on the way in: out-of-range lanes compute garbage that the two selects at the
  // end replace, and a NaN stays NaN. Unsigned exponent arithmetic keeps that garbage
  // defined behaviour.
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  using namespace exp_coef;
  const float t = std::fma(x, kLog2e, shifter);
  const float n = t - shifter;
  float r = std::fma(n, -kLn2Hi, x);
  r = std::fma(n, -kLn2Lo, r);
  float p = kPoly[0];
  for (int i = 1; i < 6; ++i) p = std::fma(p, r, kPoly[i]);
  p = std::fma(p, r * r, r) + 1.0f;
  const uint32_t e = std::bit_cast<uint32_t>(t) - std::bit_cast<uint32_t>(shifter);
  float y = p * std::bit_cast<float>((e + 127u) << 23);
  y = x < -87.3f ? 0.0f : y;
  y = x > 88.0f ? std::numeric_limits<float>::infinity() : y;
  return y;
}

}  // namespace bb::cpu
