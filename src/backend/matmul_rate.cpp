// Timing of the CPU backend's kernels on constant operands.
#include "backend/matmul_rate.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "backend/backend.h"
#include "core/process_memory.h"
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

struct MatmulSet {
  Tensor a, b, c, bias;
  int64_t bytes() const { return a.nbytes() + b.nbytes() + c.nbytes(); }
};
MatmulSet matmul_set(const MatmulArgs& p, DType in, DType out, bool bias) {
  const int64_t b_batch = p.b_batched ? p.batch : 1;
  const Shape sa = p.trans_a ? Shape{p.batch, p.k, p.m} : Shape{p.batch, p.m, p.k};
  const Shape sb = p.trans_b ? Shape{b_batch, p.n, p.k} : Shape{b_batch, p.k, p.n};
  return MatmulSet{Tensor::full(sa, 0.01f, in), Tensor::full(sb, 0.02f, in), Tensor::full(Shape{p.batch, p.m, p.n}, 0.0f, out),
                   bias ? Tensor::full(Shape{p.n}, 0.1f, DType::F32) : Tensor()};
}

struct AttentionSet {
  Tensor q, k, v, out, lse, dout = {}, dq = {}, dk = {}, dv = {};
};
int64_t attention_set_bytes(const AttentionArgs& p, DType dtype, bool backward) {
  const int64_t q = p.batch * p.seq * p.heads * p.head_dim, kv = p.batch * p.seq * p.kv_heads * p.head_dim;
  return (3 * q + 2 * kv) * int64_t(dtype_size(dtype)) * (backward ? 2 : 1);
}
void run_attention(AttentionSet& t, const AttentionArgs& p, bool backward) {
  Backend& kern = backend_for(Device::CPU);
  if (backward)
    kern.attention_backward(t.q, t.k, t.v, t.out, t.lse, t.dout, p, t.dq, t.dk, t.dv);
  else
    kern.attention(t.q, t.k, t.v, p, t.out, t.lse);
}
AttentionSet attention_set(const AttentionArgs& p, DType dtype, bool backward) {
  const Shape q{p.batch, p.seq, p.heads, p.head_dim}, kv{p.batch, p.seq, p.kv_heads, p.head_dim};
  AttentionSet s{Tensor::full(q, 0.01f, dtype), Tensor::full(kv, 0.02f, dtype), Tensor::full(kv, 0.03f, dtype),
                 Tensor::empty(q, dtype), Tensor::empty(Shape{p.batch, p.heads, p.seq}, DType::F32)};
  run_attention(s, p, false);  // the backward reads its output and lse
  if (backward) {
    s.dout = Tensor::full(q, 0.01f, dtype);
    s.dq = Tensor::empty(q, dtype);
    s.dk = Tensor::empty(kv, dtype);
    s.dv = Tensor::empty(kv, dtype);
  }
  return s;
}

std::vector<Tensor> replay_set(const MetaBackend::CallKey& call) {
  std::vector<Tensor> set;
  for (const auto& [dims, dtype] : std::get<1>(call))
    set.push_back(dims != std::vector<int64_t>{-1} ? Tensor::zeros(Shape(dims), dtype) : Tensor());
  return set;
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
  const MatmulSet one = matmul_set(p, in, out, bias);
  std::vector<MatmulSet> sets{one};
  for (int i = 1, n = copies_for(one.bytes(), max_bytes); i < n; ++i) sets.push_back(matmul_set(p, in, out, bias));
  Backend& kern = backend_for(Device::CPU);
  const double s = call_seconds(kProbeCalls, kProbeSeconds, Statistic::kMedian, [&](int i) {
    const MatmulSet& t = sets[size_t(i) % sets.size()];
    kern.matmul(t.a, t.b, t.bias, t.c, p);
  });
  return s * matmul_call_flops(args) / matmul_call_flops(p);
}

double measure_attention_seconds(const AttentionArgs& args, DType dtype, bool backward, int64_t max_bytes) {
  AttentionArgs p = args;
  while (attention_flops(p) > kProbeFlops && p.batch > 1) p.batch = (p.batch + 1) / 2;
  const int64_t set_bytes = attention_set_bytes(p, dtype, backward);
  std::vector<AttentionSet> sets;
  for (int i = 0, n = copies_for(set_bytes, max_bytes); i < n; ++i) sets.push_back(attention_set(p, dtype, backward));
  const double s = call_seconds(kProbeCalls, kProbeSeconds, Statistic::kMedian,
                                [&](int i) { run_attention(sets[size_t(i) % sets.size()], p, backward); });
  return s * attention_flops(args) / attention_flops(p);
}

double measure_replay_seconds(const MetaBackend::CallKey& call, const MetaBackend::Replay& run,
                              int64_t max_bytes) {
  const auto& args = std::get<1>(call);
  int64_t set_bytes = 0;
  for (const auto& [dims, dtype] : args)
    if (dims != std::vector<int64_t>{-1}) set_bytes += Shape(dims).numel() * int64_t(dtype_size(dtype));
  std::vector<std::vector<Tensor>> sets;
  for (int i = 0, n = copies_for(set_bytes, max_bytes); i < n; ++i) sets.push_back(replay_set(call));
  Backend& kern = backend_for(Device::CPU);
  for (size_t i = 1; i < sets.size(); ++i) run(kern, sets[i]);  // every page touched once
  return call_seconds(kProbeCalls, kProbeSeconds, Statistic::kMedian,
                      [&](int i) { run(kern, sets[size_t(i) % sets.size()]); });
}

namespace {
// What stays resident after the call (its outputs' pages, a primitive's code) is not
// transient: the overhead read after the kernels holds it.
template <class Call>
std::optional<int64_t> transient_bytes(Call&& call) {
  const bool restarted = restart_peak_rss();
  call();
  if (!restarted) return std::nullopt;
  return std::max<int64_t>(0, peak_rss_since_restart() - current_rss_bytes());
}
}  // namespace

std::optional<int64_t> run_matmul_once(const MatmulArgs& args, DType in, DType out, bool bias) {
  const MatmulSet t = matmul_set(args, in, out, bias);
  return transient_bytes([&] { backend_for(Device::CPU).matmul(t.a, t.b, t.bias, t.c, args); });
}

std::optional<int64_t> run_attention_once(const AttentionArgs& args, DType dtype, bool backward) {
  AttentionSet t;
  // Building the set runs the forward, whose scratch is read with it.
  std::optional<int64_t> held = transient_bytes([&] { t = attention_set(args, dtype, backward); });
  if (backward && held) {
    const std::optional<int64_t> back = transient_bytes([&] { run_attention(t, args, true); });
    held = back ? std::max(*held, *back) : back;
  }
  return held;
}

std::optional<int64_t> run_replay_once(const MetaBackend::CallKey& call, const MetaBackend::Replay& run) {
  std::vector<Tensor> set = replay_set(call);
  return transient_bytes([&] { run(backend_for(Device::CPU), set); });
}

}  // namespace bb
