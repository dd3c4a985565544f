// Timing of the CPU backend's matmul on constant operands.
#include "backend/matmul_rate.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "backend/backend.h"
#include "core/tensor.h"

namespace bb {

namespace {
// Seconds of f after one call that warms caches and kernels, over at least `reps` calls and
// at least 0.2 s of them (so that a short stall of a shared machine decides little): the
// fastest call, or the median one.
template <class F>
double call_seconds(int reps, Statistic stat, F&& f) {
  f();
  std::vector<double> times;
  double spent = 0;
  for (int i = 0; i < 10000 && (i < reps || spent < 0.2); ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    spent += times.back();
  }
  if (stat == Statistic::kBest) return *std::min_element(times.begin(), times.end());
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}
}  // namespace

double measure_matmul_flops(int64_t m, int64_t k, int64_t n, DType dtype, int reps, Statistic stat) {
  Tensor a = Tensor::full(Shape{m, k}, 0.01f, dtype), b = Tensor::full(Shape{k, n}, 0.02f, dtype);
  Tensor c = Tensor::empty(Shape{m, n}, dtype);
  MatmulArgs args{.batch = 1, .m = m, .n = n, .k = k};
  Backend& kern = backend_for(Device::CPU);
  const double s = call_seconds(reps, stat, [&] { kern.matmul(a, b, Tensor(), c, args); });
  return 2.0 * double(m) * double(n) * double(k) / s;
}

double measure_attention_flops(const AttentionArgs& args, DType dtype, int reps, Statistic stat) {
  const Shape q{args.batch, args.seq, args.heads, args.head_dim}, kv{args.batch, args.seq, args.kv_heads, args.head_dim};
  Tensor tq = Tensor::full(q, 0.01f, dtype), tk = Tensor::full(kv, 0.02f, dtype), tv = Tensor::full(kv, 0.03f, dtype);
  Tensor out = Tensor::empty(q, dtype), lse = Tensor::empty(Shape{args.batch, args.heads, args.seq}, DType::F32);
  Tensor dout = Tensor::full(q, 0.01f, dtype), dq = Tensor::empty(q, dtype), dk = Tensor::empty(kv, dtype),
         dv = Tensor::empty(kv, dtype);
  Backend& kern = backend_for(Device::CPU);
  const double s = call_seconds(reps, stat, [&] {
    kern.attention(tq, tk, tv, args, out, lse);
    kern.attention_backward(tq, tk, tv, out, lse, dout, args, dq, dk, dv);
  });
  return (1.0 + kAttentionBackwardShare) * attention_flops(args) / s;
}

double measure_pointwise_bandwidth(int64_t floats, int reps, Statistic stat) {
  Tensor a = Tensor::full(Shape{floats}, 1.0f, DType::F32), b = Tensor::full(Shape{floats}, 2.0f, DType::F32);
  Tensor c = Tensor::empty(Shape{floats}, DType::F32);
  Backend& kern = backend_for(Device::CPU);
  const double s = call_seconds(reps, stat, [&] { kern.binary(BinaryOp::Add, a, b, c); });
  return 3.0 * double(floats) * 4.0 / s;
}

}  // namespace bb
