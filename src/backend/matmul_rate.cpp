// Timing of the CPU backend's kernels on constant operands.
#include "backend/matmul_rate.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "backend/backend.h"
#include "core/tensor.h"

namespace bb {

namespace {
// Seconds of f(i) after one call that warms caches and kernels, over at least `reps` calls
// and at least `min_seconds` of them (so that a short stall of a shared machine decides
// little): the fastest call, or the median one.
template <class F>
double call_seconds(int reps, double min_seconds, Statistic stat, F&& f) {
  f(0);
  std::vector<double> times;
  double spent = 0;
  for (int i = 0; i < 10000 && (i < reps || spent < min_seconds); ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f(i + 1);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    spent += times.back();
  }
  if (stat == Statistic::kBest) return *std::min_element(times.begin(), times.end());
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

// A probe's part of a large call, and the FLOP ratio that scales its time back.
constexpr double kProbeFlops = 2e9;
// Copies of a probe's operands: together well past the per-core L2 caches (2 MiB here), so
// that each call reads its operands from a farther level, as a step does.
constexpr int64_t kColdBytes = 16ll << 20;
constexpr int kMaxCopies = 16;
constexpr int kProbeCalls = 3;
constexpr double kProbeSeconds = 0.01;

int copies_for(int64_t bytes, int64_t max_bytes) {
  const int64_t room = std::min(kColdBytes, max_bytes);
  return int(std::clamp<int64_t>((room + bytes - 1) / std::max<int64_t>(bytes, 1), 1, kMaxCopies));
}

double matmul_call_flops(const MatmulArgs& a) {
  return 2.0 * double(a.batch) * double(a.m) * double(a.n) * double(a.k);
}
}  // namespace

double measure_matmul_flops(int64_t m, int64_t k, int64_t n, DType dtype, int reps, Statistic stat) {
  Tensor a = Tensor::full(Shape{m, k}, 0.01f, dtype), b = Tensor::full(Shape{k, n}, 0.02f, dtype);
  Tensor c = Tensor::empty(Shape{m, n}, dtype);
  MatmulArgs args{.batch = 1, .m = m, .n = n, .k = k};
  Backend& kern = backend_for(Device::CPU);
  const double s = call_seconds(reps, 0.2, stat, [&](int) { kern.matmul(a, b, Tensor(), c, args); });
  return 2.0 * double(m) * double(n) * double(k) / s;
}

double measure_matmul_seconds(const MatmulArgs& args, DType in, DType out, bool bias, int64_t max_bytes) {
  // The part: batch entries first, then the longest of m, n and k (tokens, in a step).
  MatmulArgs p = args;
  while (matmul_call_flops(p) > kProbeFlops) {
    if (p.batch > 1) {
      p.batch = (p.batch + 1) / 2;
    } else {
      int64_t* longest = p.m >= p.n && p.m >= p.k ? &p.m : p.n >= p.k ? &p.n : &p.k;
      if (*longest <= 256) break;
      *longest = (*longest + 1) / 2;
    }
  }
  const int64_t b_batch = p.b_batched ? p.batch : 1;
  const Shape sa = p.trans_a ? Shape{p.batch, p.k, p.m} : Shape{p.batch, p.m, p.k};
  const Shape sb = p.trans_b ? Shape{b_batch, p.n, p.k} : Shape{b_batch, p.k, p.n};
  const Shape sc{p.batch, p.m, p.n};
  const int64_t set_bytes = (sa.numel() + sb.numel()) * dtype_size(in) + sc.numel() * dtype_size(out);
  std::vector<Tensor> as, bs, cs;
  for (int i = 0, n = copies_for(set_bytes, max_bytes); i < n; ++i) {
    as.push_back(Tensor::full(sa, 0.01f, in));
    bs.push_back(Tensor::full(sb, 0.02f, in));
    cs.push_back(Tensor::full(sc, 0.0f, out));
  }
  const Tensor bias_t = bias ? Tensor::full(Shape{p.n}, 0.1f, DType::F32) : Tensor();
  Backend& kern = backend_for(Device::CPU);
  const double s = call_seconds(kProbeCalls, kProbeSeconds, Statistic::kMedian, [&](int i) {
    const size_t c = size_t(i) % as.size();
    kern.matmul(as[c], bs[c], bias_t, cs[c], p);
  });
  return s * matmul_call_flops(args) / matmul_call_flops(p);
}

double measure_attention_seconds(const AttentionArgs& args, DType dtype, bool backward, int64_t max_bytes) {
  AttentionArgs p = args;
  while (attention_flops(p) > kProbeFlops && p.batch > 1) p.batch = (p.batch + 1) / 2;
  const Shape q{p.batch, p.seq, p.heads, p.head_dim}, kv{p.batch, p.seq, p.kv_heads, p.head_dim};
  const Shape lse_shape{p.batch, p.heads, p.seq};
  struct Set {
    Tensor q, k, v, out, lse, dout, dq, dk, dv;
  };
  const int64_t set_bytes = (3 * q.numel() + 2 * kv.numel()) * dtype_size(dtype) * (backward ? 2 : 1);
  std::vector<Set> sets;
  Backend& kern = backend_for(Device::CPU);
  for (int i = 0, n = copies_for(set_bytes, max_bytes); i < n; ++i) {
    Set s{Tensor::full(q, 0.01f, dtype), Tensor::full(kv, 0.02f, dtype), Tensor::full(kv, 0.03f, dtype),
          Tensor::empty(q, dtype), Tensor::empty(lse_shape, DType::F32)};
    kern.attention(s.q, s.k, s.v, p, s.out, s.lse);  // the backward reads its output and lse
    if (backward) {
      s.dout = Tensor::full(q, 0.01f, dtype);
      s.dq = Tensor::empty(q, dtype);
      s.dk = Tensor::empty(kv, dtype);
      s.dv = Tensor::empty(kv, dtype);
    }
    sets.push_back(std::move(s));
  }
  const double s = call_seconds(kProbeCalls, kProbeSeconds, Statistic::kMedian, [&](int i) {
    Set& t = sets[size_t(i) % sets.size()];
    if (backward)
      kern.attention_backward(t.q, t.k, t.v, t.out, t.lse, t.dout, p, t.dq, t.dk, t.dv);
    else
      kern.attention(t.q, t.k, t.v, p, t.out, t.lse);
  });
  return s * attention_flops(args) / attention_flops(p);
}

double measure_replay_seconds(const MetaBackend::CallKey& call, const MetaBackend::Replay& run,
                              int64_t max_bytes) {
  const auto& args = std::get<1>(call);
  int64_t set_bytes = 0;
  for (const auto& [dims, dtype] : args)
    if (dims != std::vector<int64_t>{-1}) set_bytes += Shape(dims).numel() * int64_t(dtype_size(dtype));
  std::vector<std::vector<Tensor>> sets(size_t(copies_for(set_bytes, max_bytes)));
  for (auto& set : sets)
    for (const auto& [dims, dtype] : args)
      set.push_back(dims != std::vector<int64_t>{-1} ? Tensor::zeros(Shape(dims), dtype) : Tensor());
  Backend& kern = backend_for(Device::CPU);
  for (size_t i = 1; i < sets.size(); ++i) run(kern, sets[i]);  // every page touched once
  return call_seconds(kProbeCalls, kProbeSeconds, Statistic::kMedian,
                      [&](int i) { run(kern, sets[size_t(i) % sets.size()]); });
}

}  // namespace bb
