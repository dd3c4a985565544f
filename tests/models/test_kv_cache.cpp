// The preallocated key/value cache: new positions are written in place and decode attention
// reads the filled part of the cache where it lies. Against the last row of full causal
// attention over the same keys (grouped heads, f32 and bf16), with NaN in the unfilled part
// of the cache so that one read past the filled positions would show; no token allocates a
// cache-sized tensor; a cache asked for more than its capacity, or attention of a query
// that needs a gradient, is refused.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/allocator.h"
#include "core/error.h"
#include "core/grad_mode.h"
#include "models/kv_cache.h"
#include "ops/ops.h"
#include "../io/llm_fixtures.h"

namespace bb::test {
namespace {

Tensor random_tensor(const Shape& s, uint32_t seed, DType dtype = DType::F32) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(s.numel()));
  for (float& x : v) x = n(rng);
  return cast(Tensor::from_floats(s, v), dtype);
}

class DecodeAttention : public ::testing::TestWithParam<DType> {};

TEST_P(DecodeAttention, EqualsTheLastRowOfCausalAttentionAndReadsOnlyFilledPositions) {
  NoGradGuard no_grad;
  const DType dt = GetParam();
  const int64_t B = 2, T = 37, H = 6, Hkv = 2, D = 16, capacity = 64;
  Tensor q = random_tensor(Shape{B, T, H, D}, 1, dt), k = random_tensor(Shape{B, T, Hkv, D}, 2, dt),
         v = random_tensor(Shape{B, T, Hkv, D}, 3, dt);
  Tensor want = slice(attention(q, k, v, true), 1, T - 1, 1);  // the newest query's row

  KVCache cache(capacity);
  cache.append(0, slice(k, 1, 0, T - 1), slice(v, 1, 0, T - 1));  // a prompt, then one token
  cache.append(0, slice(k, 1, T - 1, 1), slice(v, 1, T - 1, 1));
  EXPECT_EQ(cache.length(), T);
  Tensor got = cache.attend(0, slice(q, 1, T - 1, 1));
  EXPECT_LT(max_rel_error(got, want), dt == DType::F32 ? 1e-5 : 2e-2);
  for (float x : got.to_floats()) ASSERT_TRUE(std::isfinite(x)) << "read an unfilled position";
}

INSTANTIATE_TEST_SUITE_P(Dtypes, DecodeAttention, ::testing::Values(DType::F32, DType::BF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(DecodeAttention, UnfilledPositionsAreNeverRead) {
  NoGradGuard no_grad;
  const int64_t B = 1, H = 2, D = 8, capacity = 16, len = 5;
  Tensor kc = Tensor::full(Shape{B, capacity, H, D}, std::nanf("")), vc = Tensor::full(Shape{B, capacity, H, D}, std::nanf(""));
  Tensor k = random_tensor(Shape{B, len, H, D}, 4), v = random_tensor(Shape{B, len, H, D}, 5);
  write_slice(k, kc, 1, 0);
  write_slice(v, vc, 1, 0);
  Tensor q = random_tensor(Shape{B, 1, H, D}, 6);
  for (float x : decode_attention(q, kc, vc, len).to_floats()) EXPECT_TRUE(std::isfinite(x));
}

TEST(KVCacheGrowth, ATokenAllocatesNoCacheSizedTensor) {
  NoGradGuard no_grad;
  const int64_t B = 1, H = 4, D = 32, capacity = 512;
  KVCache cache(capacity);
  cache.append(0, random_tensor(Shape{B, 8, H, D}, 7), random_tensor(Shape{B, 8, H, D}, 8));
  Allocator& cpu = Allocator::of(Device::CPU);
  const Tensor k = random_tensor(Shape{B, 1, H, D}, 9), v = random_tensor(Shape{B, 1, H, D}, 10),
               q = random_tensor(Shape{B, 1, H, D}, 11);
  cpu.reset_peaks();
  const int64_t live = cpu.stats().total_live;
  for (int i = 0; i < 100; ++i) {
    cache.append(0, k, v);
    (void)cache.attend(0, q);
  }
  EXPECT_EQ(cache.length(), 108);
  const int64_t one_cache = B * capacity * H * D * 4;
  EXPECT_LT(cpu.stats().total_peak - live, one_cache / 8) << "a token copied the cache";
}

TEST(KVCacheGrowth, MorePositionsThanTheCapacityOrAGradientAreRefused) {
  KVCache cache(4);
  Tensor kv = Tensor::zeros(Shape{1, 3, 2, 8});
  cache.append(0, kv, kv);
  try {
    cache.append(0, kv, kv);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds 4 positions"), std::string::npos) << e.what();
  }
  Tensor q = Tensor::zeros(Shape{1, 1, 2, 8});
  q.set_requires_grad(true);
  EXPECT_THROW(cache.attend(0, q), Error);
}

}  // namespace
}  // namespace bb::test
