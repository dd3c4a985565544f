// Op-level timings at GPT-2-small shapes (B=8, T=1024, C=768, H=12, V=50257 unless given):
// GFLOP/s of matmul (f32, bf16), attention forward+backward and the chunked linear +
// cross-entropy, next to oneDNN's own matmul rate measured in the same run. Each figure is
// the median of several repetitions, with the spread.
#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "autograd/backward.h"
#include "bench_util.h"
#include "core/grad_mode.h"
#include "ops/ops.h"

using namespace bb;

namespace {

struct Row {
  std::string name;
  double flop;
  bench::Stats s;
};

void print(const Row& r, double ceiling) {
  const double g = r.flop / r.s.median / 1e9;
  fmt::print("{:<44} {:>9.2f} ms {:>8.1f} GFLOP/s {:>6.0f}% of ceiling  (spread {:.0f}%)\n", r.name,
             r.s.median * 1e3, g, 100 * g / ceiling, 100 * (r.s.max - r.s.min) / r.s.median);
}

bench::Stats repeat(int reps, const std::function<void()>& fn) {
  fn();  // warm the primitive caches
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) t.push_back(bench::seconds_of(fn));
  return bench::stats_of(t);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"op benchmark"};
  int64_t B = 8, T = 1024, C = 768, H = 12, V = 50257;
  int reps = 5;
  int64_t chunk = 0;
  app.add_option("--batch", B);
  app.add_option("--seq", T);
  app.add_option("--embd", C);
  app.add_option("--heads", H);
  app.add_option("--vocab", V);
  app.add_option("--reps", reps);
  app.add_option("--chunk", chunk, "rows per chunk of the linear + cross-entropy (0: its default)")->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);

  const double ceil32 = bench::matmul_ceiling_gflops(DType::F32), ceil16 = bench::matmul_ceiling_gflops(DType::BF16);
  fmt::print("matmul ceiling (oneDNN, 2048^3, best of 5): f32 {:.0f} GFLOP/s, bf16 {:.0f} GFLOP/s\n", ceil32, ceil16);
  const int64_t rows = B * T;

  for (DType dt : {DType::F32, DType::BF16}) {
    const double ceiling = dt == DType::F32 ? ceil32 : ceil16;
    Tensor x = Tensor::full(Shape{rows, C}, 0.01f, dt), w = Tensor::full(Shape{C, 4 * C}, 0.01f, dt);
    NoGradGuard ng;
    print({fmt::format("matmul {} ({}x{}) x ({}x{})", dtype_name(dt), rows, C, C, 4 * C), 2.0 * rows * C * 4 * C,
           repeat(reps, [&] { matmul(x, w); })},
          ceiling);
  }

  for (DType dt : {DType::F32, DType::BF16}) {
    const int64_t D = C / H;
    auto make = [&] { return Tensor::full(Shape{B, T, H, D}, 0.02f, dt).set_requires_grad(true); };
    Tensor q = make(), k = make(), v = make();
    const double fwd = 4.0 * B * H * T * T * D / 2;  // causal: half the score matrix
    Tensor dout = Tensor::full(Shape{B, T, H, D}, 1.0f, dt);
    print({fmt::format("attention {} fwd+bwd (B={} T={} H={} D={})", dtype_name(dt), B, T, H, D), 3.5 * fwd,
           repeat(reps, [&] {
             Tensor o = attention(q, k, v, true);
             backward(o, dout);
           })},
          dt == DType::F32 ? ceil32 : ceil16);
  }

  for (DType dt : {DType::F32, DType::BF16}) {
    Tensor h = Tensor::full(Shape{rows, C}, 0.01f, dt).set_requires_grad(true);
    Tensor wte = Tensor::full(Shape{V, C}, 0.01f, DType::F32).set_requires_grad(true);
    std::vector<int64_t> ids(rows);
    for (int64_t i = 0; i < rows; ++i) ids[i] = (i * 7919) % V;
    Tensor targets = Tensor::from_ints(Shape{rows}, ids);
    print({fmt::format("linear+cross-entropy {} fwd+bwd ({}x{}, V={})", dtype_name(dt), rows, C, V),
           6.0 * rows * C * V, repeat(reps, [&] {
             Tensor loss = linear_cross_entropy(h, wte, targets, -100, nullptr, chunk);
             backward(loss);
           })},
          dt == DType::F32 ? ceil32 : ceil16);
  }
  return 0;
}
