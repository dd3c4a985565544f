// bf16 products against f32 ones of the same (bf16-exact) inputs, over the shapes where
// oneDNN 2.6's AMX kernel went wrong (48 < n < 64 with few rows: values off by the size of
// the results, some read from memory it does not own), for both weight layouts, one product
// and a batch of them. bf16 outputs round to 8 bits: 1e-2 of the largest result.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "data/dataset.h"
#include "ops/ops.h"

namespace bb {
namespace {

std::vector<float> values(int64_t n, uint64_t seed, float scale) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = scale * float(int(mix64(seed + i) % 201) - 100) / 100.0f;
  return v;
}

double rel_err(const Tensor& got, const Tensor& want) {
  const std::vector<float> g = cast(got, DType::F32).to_floats(), w = want.to_floats();
  double err = 0, scale = 1e-6;
  for (size_t i = 0; i < w.size(); ++i) {
    err = std::max(err, std::abs(double(g[i]) - double(w[i])));
    scale = std::max(scale, std::abs(double(w[i])));
  }
  return err / scale;
}

TEST(MatmulBf16, MatchesF32WhereTheAmxKernelWentWrong) {
  for (bool trans_b : {true, false})
    for (int64_t batch : {1, 3})
      for (int64_t n : {16, 48, 49, 50, 56, 63, 64, 65})
        for (int64_t m : {1, 2, 5, 8, 16, 32, 40})
          for (int64_t k : {64, 768}) {
            SCOPED_TRACE(testing::Message() << "trans_b " << trans_b << " batch " << batch << " m " << m << " n " << n
                                            << " k " << k);
            // a batch of products with one weight each (b batched), or one weight for all rows
            const Shape as = batch > 1 ? Shape{batch, m, k} : Shape{m, k};
            const Shape bs = trans_b ? (batch > 1 ? Shape{batch, n, k} : Shape{n, k})
                                     : (batch > 1 ? Shape{batch, k, n} : Shape{k, n});
            // bf16-exact inputs, so both products see the same numbers
            const Tensor a = cast(cast(Tensor::from_floats(as, values(as.numel(), 1, 1.0f)), DType::BF16), DType::F32);
            const Tensor b = cast(cast(Tensor::from_floats(bs, values(bs.numel(), 7, 0.1f)), DType::BF16), DType::F32);
            const Tensor want = matmul(a, b, false, trans_b);
            EXPECT_LT(rel_err(matmul(cast(a, DType::BF16), cast(b, DType::BF16), false, trans_b), want), 1e-2);
          }
}

}  // namespace
}  // namespace bb
